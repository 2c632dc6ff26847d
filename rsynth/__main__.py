from rsynth.cli import main

main()
