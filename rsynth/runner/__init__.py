"""Running a stage over its input: batches at fixed positions, resume, input partitions, Ray blocks.

A stage's own code only transforms validated items into rows (datatrove's split between pipeline
steps and the executor); everything about where rows come from and go to lives here.
"""
