"""`rsynth serve-reward`: rsynth's verifiers as an HTTP reward server (OpenRLHF's remote RM protocol)."""

from __future__ import annotations

from rsynth.cli.common import console
from rsynth.cli.params import with_configs
from rsynth.rewards.params import RewardParams
from rsynth.rewards.server import ServeParams
from rsynth.verifiers.lean_params import LeanParams


@with_configs(serve=ServeParams, reward=RewardParams, lean=LeanParams)
def serve_reward(serve: ServeParams, reward: RewardParams, lean: LeanParams) -> None:
    """Score rollouts posted as {"query", "prompts", "labels"} lists; answers {"rewards": \\[...]}.
    Use with OpenRLHF: --remote_rm_url http://HOST:PORT/ --label_key ground_truth."""
    from rsynth.rewards.scorer import Batcher, RewardScorer
    from rsynth.rewards.server import RewardServer

    server = RewardServer(Batcher(RewardScorer(reward, lean)), serve)
    console.print(f"rsynth reward server on {server.url} ({reward.workers} workers); Ctrl-C stops it", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
