"""LensSpec.run: a lens sees every model in eval mode, so looking never changes a model (its
BatchNorm statistics), and each model's own mode is given back afterwards."""

from __future__ import annotations

import torch

from robustlens.lenses.base import LensResult, LensSpec, StudyModel
from tests.lenses.helpers import make_ctx, make_images, make_info, small_cnn, study_model


def spying_lens(seen: list[tuple[str, bool]], scope: str) -> LensSpec:
    """A lens that records each model's mode and runs it on the images (in whatever mode)."""

    def compute(target, data, params, ctx) -> LensResult:
        for m in target if isinstance(target, list) else [target]:
            seen.append((m.name, any(module.training for module in m.model.modules())))
            with torch.no_grad():
                m.model(data.images)
        return LensResult()

    return LensSpec("spy", "Spy", "-", "-", "records modes", dict, compute, scope=scope)


def left_training(info, name: str, seed: int) -> StudyModel:
    model = study_model(small_cnn(info, seed=seed), name)
    model.model.train()
    return model


def test_a_lens_sees_models_in_eval_mode_and_leaves_them_unchanged():
    info = make_info()
    data = make_images(info, 16)
    for scope in ("model", "study"):
        models = [left_training(info, "a", 0), left_training(info, "b", 1)]
        before = [{k: v.clone() for k, v in m.model.state_dict().items()} for m in models]
        seen: list[tuple[str, bool]] = []
        target = models if scope == "study" else models[0]
        spying_lens(seen, scope).run(target, data, {}, make_ctx(info))
        looked_at = models if scope == "study" else models[:1]
        assert seen == [(m.name, False) for m in looked_at]
        for m, state in zip(models, before, strict=True):
            assert m.model.training, m.name  # the caller's mode is back
            for key, value in m.model.state_dict().items():
                assert torch.equal(value, state[key]), (m.name, key)
