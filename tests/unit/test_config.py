import pytest

from rechroma.errors import ConfigError
from rechroma.training.config import Config, config_from_dict, config_to_dict, load_config


def test_defaults_without_file_or_overrides() -> None:
    assert load_config() == Config()


def test_toml_then_overrides_take_precedence(tmp_path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[train]\nsteps = 100\nloss = "l1"\n[model]\nwidth = 24\n')
    cfg = load_config(path, ["train.steps=7", "optim.lr=1e-4", "data.degrade.prob=0"])
    assert cfg.train.steps == 7
    assert cfg.train.loss == "l1"
    assert cfg.model.width == 24
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.data.degrade.prob == 0.0 and isinstance(cfg.data.degrade.prob, float)


def test_list_override_becomes_tuple() -> None:
    cfg = load_config(None, ['data.train_shards=["a/*.tar", "b/*.tar"]'])
    assert cfg.data.train_shards == ("a/*.tar", "b/*.tar")


@pytest.mark.parametrize(
    "override",
    ["train.stepz=3", "train.steps=many", "train.steps=1.5", "model=3", "nokey", "train.seed=true"],
)
def test_bad_overrides_are_rejected_by_name_and_type(override: str) -> None:
    with pytest.raises(ConfigError):
        load_config(None, [override])


def test_round_trip_through_dict() -> None:
    cfg = load_config(None, ["train.steps=11", "model.global_context=false"])
    assert config_from_dict(Config, config_to_dict(cfg)) == cfg


def test_resumed_base_is_kept_under_overrides() -> None:
    base = config_to_dict(load_config(None, ["train.steps=50", "train.seed=3"]))
    cfg = load_config(None, ["train.steps=80"], base=base)
    assert cfg.train.steps == 80 and cfg.train.seed == 3


def test_unreadable_toml_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[train\nsteps = ")
    with pytest.raises(ConfigError):
        load_config(path)
