"""agra_ros.policy: GPN, PPO, online EWC, prioritised memory, Lagrangian reward, baselines, oracle, registry.

Import the submodules you need (``from agra_ros.policy.registry import make_policy``); this package does not import
torch-heavy modules eagerly so the policy node can start fast.
"""
