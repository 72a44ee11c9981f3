"""Attacks in pixel space: threat models, PGD / FGSM, Carlini–Wagner L2, DeepFool, FAB,
Square, evaluation."""

from robustlens.attacks.base import Attack
from robustlens.attacks.cw import CarliniWagnerL2
from robustlens.attacks.deepfool import DeepFool
from robustlens.attacks.evaluate import (
    RobustnessResult,
    SweepResult,
    epsilon_sweep,
    robust_accuracy,
)
from robustlens.attacks.fab import FAB
from robustlens.attacks.pgd import FGSM, PGD
from robustlens.attacks.result import AttackResult
from robustlens.attacks.square import Square
from robustlens.attacks.targets import choose_targets
from robustlens.attacks.threat import L1, L2, Linf, ThreatModel, project_l1_ball, threat_model

__all__ = [
    "FAB",
    "FGSM",
    "L1",
    "L2",
    "PGD",
    "Attack",
    "AttackResult",
    "CarliniWagnerL2",
    "DeepFool",
    "Linf",
    "RobustnessResult",
    "Square",
    "SweepResult",
    "ThreatModel",
    "choose_targets",
    "epsilon_sweep",
    "project_l1_ball",
    "robust_accuracy",
    "threat_model",
]
