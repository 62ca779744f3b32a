import pytest

from aiayn import ModelConfig, Transformer


def test_presets_have_the_documented_shapes() -> None:
    base = ModelConfig.base(100, 100)
    assert (base.d_model, base.d_ff, base.n_heads, base.n_encoder_layers, base.dropout) == (
        512,
        2048,
        8,
        6,
        0.1,
    )
    big = ModelConfig.big(100, 100)
    assert (big.d_model, big.d_ff, big.n_heads, big.dropout) == (1024, 4096, 16, 0.3)
    small = ModelConfig.small(100, 120)
    assert (small.d_model, small.n_heads, small.d_ff) == (256, 4, 1024)
    assert (small.n_encoder_layers, small.n_decoder_layers) == (3, 3)
    assert small.d_head == 64
    assert ModelConfig.preset("small", 100, 120) == small
    assert ModelConfig.small(100, 120, dropout=0.3).dropout == 0.3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"d_model": 100, "n_heads": 3}, "d_model"),
        ({"activation": "gelu_new"}, "activation"),
        ({"positional": "rotary"}, "positional"),
        ({"attention_kernel": "flash"}, "attention_kernel"),
        ({"dropout": 1.5}, "dropout"),
        ({"n_encoder_layers": 0}, "n_encoder_layers"),
        ({"share_embeddings": True}, "share_embeddings"),
        ({"pad_id": 500}, "pad_id"),
    ],
)
def test_invalid_values_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ModelConfig.tiny(40, 50, **overrides)


def test_dict_round_trip_and_unknown_key() -> None:
    config = ModelConfig.tiny(40, 50, norm_first=True)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="d_modle"):
        ModelConfig.from_dict({**config.to_dict(), "d_modle": 3})
    with pytest.raises(ValueError, match="unknown model preset"):
        ModelConfig.preset("huge", 1, 1)


def test_tied_and_shared_tables_are_one_parameter() -> None:
    plain = Transformer(ModelConfig.tiny(50, 50))
    tied = Transformer(ModelConfig.tiny(50, 50, tie_output=True, share_embeddings=True))
    assert tied.generator.weight is tied.tgt_embed.weight is tied.src_embed.weight
    assert plain.num_parameters() - tied.num_parameters() == 2 * 50 * 64
