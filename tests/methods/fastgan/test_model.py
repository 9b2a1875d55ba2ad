"""FastGAN / encoder shapes for every size, noise modes, augmentation, erasing, training + resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctad_core.methods.fastgan.model import (
    SIZES,
    Discriminator,
    Encoder,
    EncoderConfig,
    FastGANConfig,
    Generator,
    NoiseInjection,
    count_parameters,
    quadrant,
    reconstruction_targets,
    small_size,
)
from ctad_core.train import restore_training, save_checkpoint

from ._nets import NZ, tiny

# ------------------------------------------------------------ FastGAN's channel plan, counted by hand
# Liu et al. 2021 (Fig. 3 and the released code), at width w (= ngf = ndf), one image channel, no biases;
# spectral normalisation adds buffers, not parameters; BatchNorm has 2 parameters per channel.
# Multipliers of w for the features at resolution r: G; D's big branch (16 channels at 256² for w = 64);
# the 1×1 conv of D's logit head (widens the 8×8 features); D's small branch (half the big one); D's
# decoders (the output of the up-block reaching r: G's plan at half width).
G_PLAN = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 1 / 2, 512: 1 / 4, 1024: 1 / 8}
D_BIG = {512: 1 / 8, 256: 1 / 4, 128: 1 / 2, 64: 1, 32: 2, 16: 4, 8: 8}
D_HEAD = 16
D_SMALL = {64: 1 / 2, 32: 1, 16: 2, 8: 4}
D_DEC = {8: 4, 16: 2, 32: 1, 64: 1, 128: 1 / 2}


def _conv(cin, cout, k):
    return cin * cout * k * k


def _bn(c):
    return 2 * c


def _up(cin, cout):  # nearest ×2, 3×3 conv to 2·cout, BN, GLU
    return _conv(cin, 2 * cout, 3) + _bn(2 * cout)


def _up_comp(cin, cout):  # two convs, two noise-injection weights
    return _up(cin, cout) + _conv(cout, 2 * cout, 3) + _bn(2 * cout) + 2


def _sle(cin, cout):  # 4×4 conv then 1×1 conv
    return _conv(cin, cout, 4) + _conv(cout, cout, 1)


def _down_comp(cin, cout):  # (4×4 s2, BN, 3×3, BN) + (avg-pool, 1×1, BN)
    return (
        _conv(cin, cout, 4) + _bn(cout) + _conv(cout, cout, 3) + _bn(cout) + _conv(cin, cout, 1) + _bn(cout)
    )


def _down(cin, cout):
    return _conv(cin, cout, 4) + _bn(cout)


def hand_g(size: int, w: int, nz: int) -> int:
    c = {r: int(m * w) for r, m in G_PLAN.items()}
    n = nz * 2 * c[4] * 16 + _bn(2 * c[4])  # 4×4 transposed conv, BN, GLU
    r = 8
    while r <= size:
        n += (_up_comp if r in (8, 32, 128, 512) else _up)(c[r // 2], c[r])
        n += _sle(c[r // 16], c[r]) if 64 <= r <= 512 else 0
        r *= 2
    small = min(128, size // 2)
    return n + _conv(c[size], 1, 3) + _conv(c[small], 1, 1)


def hand_d(size: int, w: int, dec_in: int) -> int:
    big = {r: int(m * w) for r, m in D_BIG.items()}
    sm = {r: int(m * w) for r, m in D_SMALL.items()}
    dec = {r: int(m * w) for r, m in D_DEC.items()}
    if size == 1024:
        n = _conv(1, big[512], 4) + _conv(big[512], big[256], 4) + _bn(big[256])
    elif size == 512:
        n = _conv(1, big[256], 4)
    else:
        n = _conv(1, big[size], 3)
    r0 = min(size, 256)
    r = r0 // 2
    while r >= 8:
        n += _down_comp(big[2 * r], big[r]) + (_sle(big[8 * r], big[r]) if 8 * r <= r0 else 0)
        r //= 2
    n += _conv(big[8], D_HEAD * w, 1) + _bn(D_HEAD * w) + _conv(D_HEAD * w, 1, 4)
    small = min(128, size // 2)
    n += _conv(1, sm[small // 2], 4)
    r = small // 2
    while r > 8:
        n += _down(sm[r], sm[r // 2])
        r //= 2
    n += _conv(sm[8], 1, 4)

    def decoder(cin):
        total, c, r = 0, cin, dec_in
        while r < small:
            r *= 2
            total += _up(c, dec[r])
            c = dec[r]
        return total + _conv(c, 1, 3)

    return n + decoder(big[8]) + decoder(sm[8]) + decoder(big[16])


@pytest.fixture
def one_thread():
    """Spectral norm's power iterations are tiny matrix-vector products: one thread builds faster."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_hand_count_is_fastgan_reference():
    # FastGAN's D at 256², ndf 64, one channel, decoders on 8×8 features: 11 523 120 parameters
    # (stem 144, five residual down-blocks 6 116 672, head 542 720, three SLE 1 032 192, small branch
    # 689 536 + 4 096, decoders 1 439 136 + 2 × 849 312), and its G at nz 256, ngf 64: 29 127 142
    # (first layer 8 392 704, up-blocks 8…256² 14 159 874 + 2 360 320 + 885 762 + 295 424 + 221 698 + 36 992,
    # SLE 2 113 536 + 528 384 + 132 096, output convs 288 + 64).
    assert hand_d(256, 64, dec_in=8) == 11_523_120
    assert hand_g(256, 64, nz=256) == 29_127_142
    # seed 000's G (nz 512) differs only in its first layer
    assert hand_g(256, 64, 512) - hand_g(256, 64, 256) == 256 * 2048 * 16


@pytest.mark.parametrize("size", SIZES)
def test_parameter_counts_follow_the_channel_plan(size, one_thread):
    w, nz = 16, 64  # every channel count >= min_ch = 1: the plan is not clamped
    G = Generator(FastGANConfig(image_size=size, nz=nz, ngf=w, ndf=w, min_ch=1))
    assert count_parameters(G) == hand_g(size, w, nz)
    for dec_in in (4, 8):
        cfg = FastGANConfig(image_size=size, nz=nz, ngf=w, ndf=w, min_ch=1, dec_in=dec_in)
        assert count_parameters(Discriminator(cfg)) == hand_d(size, w, dec_in), dec_in


def test_discriminator_at_fastgan_width(one_thread):
    cfg = FastGANConfig(image_size=256, ndf=64, dec_in=8)
    assert count_parameters(Discriminator(cfg)) == 11_523_120  # FastGAN's D
    seed = FastGANConfig(image_size=256, ndf=64, dec_in=4)  # seed 000: one decoder up-block more
    assert count_parameters(Discriminator(seed)) == hand_d(256, 64, 4) == 15_654_960


@pytest.mark.parametrize("size", SIZES)
def test_forward_shapes(size, one_thread):
    cfg = tiny(size)
    G, D = Generator(cfg), Discriminator(cfg)
    E = Encoder(EncoderConfig(image_size=size, nz=NZ, width=2, max_ch=8))
    z = torch.rand(2, NZ) * 2 - 1
    img, sm = G(z, with_small=True)
    s = small_size(size)
    assert s == min(128, size // 2) and D.small == s
    assert img.shape == (2, 1, size, size) and sm.shape == (2, 1, s, s)
    assert img.abs().max() <= 1
    logits = D(img)
    assert logits.shape == (2, 50)
    logits, recs = D(img, sm, part=3)
    assert [tuple(r.shape) for r in recs] == [(2, 1, s, s)] * 3
    feats = D.features(img)
    assert feats[0].shape[-1] == min(size, 256) and feats[-1].shape[-1] == 8
    zz = E(img)
    assert zz.shape == (2, NZ) and zz.abs().max() <= 1
    assert E.n_blocks == int(np.log2(size)) - 1
    assert str(size) in G.ups and str(2 * size) not in G.ups  # 512: one up-block fewer than 1024
    assert len(G.ups) == int(np.log2(size)) - 2


@pytest.mark.parametrize("size", SIZES)
def test_discriminator_feature_channels(size, one_thread):
    w = 16
    D = Discriminator(FastGANConfig(image_size=size, nz=NZ, ngf=2, ndf=w, min_ch=1)).eval()
    with torch.no_grad():
        feats = D.features(torch.zeros(1, 1, size, size))
        small = D.small_branch(torch.zeros(1, 1, D.small, D.small))
    assert [(f.shape[1], f.shape[-1]) for f in feats] == [
        (int(D_BIG[r] * w), r) for r in sorted(D_BIG, reverse=True) if r <= min(size, 256)
    ]
    assert small.shape == (1, int(D_SMALL[8] * w), 8, 8)


def test_discriminator_refuses_another_architecture(tmp_path, one_thread):
    D = Discriminator(tiny(64))
    wider = Discriminator(FastGANConfig(image_size=64, nz=NZ, ngf=2, ndf=4, min_ch=2)).state_dict()
    with pytest.raises(
        RuntimeError, match=r"does not fit Discriminator\(image_size=64, ndf=2.*train the GAN again"
    ):
        D.load_state_dict(wider)
    with pytest.raises(RuntimeError, match="1 missing"):
        D.load_state_dict({k: v for i, (k, v) in enumerate(D.state_dict().items()) if i})
    before = {k: v.clone() for k, v in D.state_dict().items()}
    D.load_state_dict(Discriminator(tiny(64)).state_dict())  # the same architecture loads
    assert any(not torch.equal(before[k], v) for k, v in D.state_dict().items())
    # resuming training from such a checkpoint names the file
    save_checkpoint(tmp_path / "ck.pt", {"D": wider})
    with pytest.raises(RuntimeError, match=r"ck\.pt: cannot restore 'D'.*does not fit"):
        restore_training(tmp_path / "ck.pt", {"D": D})


def test_sizes_and_config_validation():
    assert SIZES == (64, 128, 256, 512, 1024)
    with pytest.raises(ValueError):
        FastGANConfig(image_size=96)
    with pytest.raises(ValueError):
        Generator(tiny(64))(torch.zeros(2, NZ + 1))
    with pytest.raises(ValueError, match="expects"):
        Discriminator(tiny(64))(torch.zeros(2, 1, 32, 32))
    assert FastGANConfig.from_dict(tiny(64).to_dict()) == tiny(64)


def test_skip_layer_excitation_present():
    G = Generator(tiny(256))
    assert sorted(int(k) for k in G.sle) == [64, 128, 256]
    G = Generator(tiny(1024))
    assert sorted(int(k) for k in G.sle) == [64, 128, 256, 512]
    D = Discriminator(tiny(64))
    assert all(hasattr(m, "parametrizations") for m in D.modules() if isinstance(m, torch.nn.Conv2d))


def test_noise_modes():
    G = Generator(tiny(64)).eval()
    for m in G.modules():
        if isinstance(m, NoiseInjection):
            m.weight.data.fill_(0.5)
    z = torch.rand(3, NZ)
    G.set_noise("random")
    assert not torch.allclose(G(z), G(z))
    G.set_noise("zero")
    assert torch.equal(G(z), G(z))
    G.set_noise("fixed", seed=1)
    a = G(z)
    assert torch.equal(a, G(z))
    assert torch.allclose(G(z[:1]), a[:1], atol=1e-6)  # the fixed map is shared by all items
    with pytest.raises(ValueError):
        G.set_noise("loud")


def test_quadrant_and_targets():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert quadrant(x, 0).flatten().tolist() == [0, 1, 4, 5]
    assert quadrant(x, 3).flatten().tolist() == [10, 11, 14, 15]
    real = torch.rand(2, 1, 64, 64)
    t = reconstruction_targets(real, torch.rand(2, 1, 32, 32), 1, 32)
    assert [tuple(a.shape) for a in t] == [(2, 1, 32, 32)] * 3
    torch.testing.assert_close(t[2], real[..., :32, 32:])
