"""Attacks in pixel space: threat models, PGD / FGSM, APGD, Carlini–Wagner L2, DeepFool,
FAB, Square, AutoAttack, evaluation."""

from robustlens.attacks.apgd import APGD, APGDT
from robustlens.attacks.autoattack import AutoAttack, AutoAttackResult
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
    "APGD",
    "APGDT",
    "FAB",
    "FGSM",
    "L1",
    "L2",
    "PGD",
    "Attack",
    "AttackResult",
    "AutoAttack",
    "AutoAttackResult",
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
