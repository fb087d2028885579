"""agra_ros.core: the contract between the simulator and the robot.

The observation builder and the own-speed state (:mod:`~agra_ros.core.observation`), the reward terms and their
Lagrange multipliers (:mod:`~agra_ros.core.reward`), the modelled device and its D vector
(:mod:`~agra_ros.core.device`), the cost and accuracy tables (:mod:`~agra_ros.tables.search`) and the shared
defaults (:mod:`~agra_ros.core.contract`). It imports neither gymnasium nor the simulator nor the policy package,
so the simulator (``agra_ros.sim``) and the on-robot agent (``agra_ros.online``) both build on it and the robot
process never loads the simulator's gym stack; ``test/test_layering.py`` enforces it.
"""
