"""SynthMOSI: a generated stand-in for CMU-MOSI whose Bayes-optimal score is known.

Sentiment ``s`` (the label) from a prior on the 43-atom lattice of multiples of 1/3 and 1/5 in [-3,
3]; irony makes the words express ``e = -s``; the text is a phrase of bucket ``b = clip(floor(e +
text_noise N(0,1) + 1/2), -3, 3)`` in narration; frames ``x_tc = mean_c + a_c s + b_c |s| +
o_{speaker,c} + frame_sd_c N(0,1)``, speaker offsets ``o ~ N(0, speaker_sd_c^2)``, speakers disjoint
across splits. :meth:`SynthMOSI.oracle` is exact given text, frames.

Knobs beyond that (their defaults give the same clips, bit for bit; they draw from a second stream
seeded by ``(seed, 1)``, so the clips of one seed differ only where a knob acts): ``nuisance``
kappa, a per-clip latent ``u ~ N(0, 1)`` independent of s shared by the three modalities: frames
gain ``u g_c`` with ``g = kappa frame_sd * w`` (``w`` a fixed random unit vector per modality: per
frame, a shift of ``kappa u`` frame-noise SDs along ``w``), and the narration sentences of a text
come from ``NARRATION[7:]`` if ``c = 1``, else ``NARRATION[:7]``, ``P(c = 1 | u) = Phi(kappa u)`` (a
text with no narration shows no c; at kappa = 0 the texts are today's); ``share_speaker=False``
draws the voice's speaker apart from the face's (by the split's speaker shares),
``share_frame_count=False`` the voice's frame count (and its frame noise) apart from the face's."""

from __future__ import annotations

import inspect
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import entr, log_ndtr, logsumexp, ndtr

from .data import SPLITS, Sample

__all__ = [
    "SynthMOSI",
    "SynthParams",
    "ChannelParams",
    "make_synthmosi",
    "text_bucket",
    "label_atoms",
    "modality_mutual_information",
    "label_starvation",
    "SYNTH_OPTIONS",
    "SYNTH_DEFAULTS",
    "ADJ_TEMPLATES",
    "ADJ_PHRASES",
    "VERB_PHRASES",
    "NARRATION",
]

ADJ_TEMPLATES = (
    "i thought it was {}",
    "the movie was {}",
    "honestly the acting was {}",
    "overall it was {}",
    "the story was {}",
    "the ending was {}",
    "i found it {}",
)
ADJ_PHRASES = {
    3: (
        "absolutely amazing",
        "really fantastic",
        "incredibly good",
        "truly wonderful",
        "just brilliant",
        "extremely funny",
    ),
    2: ("good", "great", "enjoyable", "funny", "well made", "fun to watch"),
    1: (
        "not bad",
        "kind of nice",
        "pretty decent",
        "somewhat interesting",
        "a little charming",
        "not too bad",
    ),
    0: ("okay", "average", "neither good nor bad", "so so", "fine i guess"),
    -1: (
        "not great",
        "a bit slow",
        "kind of boring",
        "somewhat disappointing",
        "a little dull",
        "not very good",
    ),
    -2: ("bad", "boring", "disappointing", "dull", "poorly made", "not good"),
    -3: (
        "absolutely terrible",
        "really awful",
        "incredibly boring",
        "truly horrible",
        "just the worst",
        "extremely bad",
    ),
}
VERB_PHRASES = {
    3: ("i absolutely loved it", "i really loved this movie", "i would watch it again and again"),
    2: ("i liked it", "i enjoyed it", "i would recommend it"),
    1: ("i kind of liked it", "it had some good moments", "i mostly enjoyed it"),
    0: ("i do not have strong feelings about it", "i have mixed feelings about it"),
    -1: ("i did not really enjoy it", "it could have been better", "i was a little let down"),
    -2: ("i did not like it", "i would not recommend it", "i was bored"),
    -3: ("i absolutely hated it", "i really hated this movie", "it was a complete waste of time"),
}
NARRATION = (
    "the movie is about a family that moves to a small town",
    "i saw it on friday with my sister",
    "it came out last summer",
    "the main character is a police officer",
    "it runs about two hours",
    "there is a twist near the end",
    "it is based on a book",
    "the director made another film a few years ago",
    "most of it takes place in new york",
    "i went to the late show",
    "my friend told me to see it",
    "there are a lot of characters in it",
    "it is the second movie in the series",
    "the trailer came out in the spring",
)
_FILLERS = ("", "", "", "um ", "uh ", "so ", "and ")
_PHRASE_BUCKET = {
    p: b for lexicon in (ADJ_PHRASES, VERB_PHRASES) for b, ps in lexicon.items() for p in ps
}
_PHRASE_RE = re.compile(
    r"\b(" + "|".join(re.escape(p) for p in sorted(_PHRASE_BUCKET, key=len, reverse=True)) + r")\b"
)
_HALF = len(NARRATION) // 2
_NARRATION_RE = re.compile("|".join(re.escape(p) for p in NARRATION))
_ID_CHARS = string.ascii_letters + string.digits + "_-"
_MODALITIES = ("t", "v", "a")


def text_bucket(text: str) -> int:
    """The bucket b in {-3..3} a SynthMOSI text expresses (0 if it only narrates): what the text
    oracle sees."""
    found = {_PHRASE_BUCKET[m] for m in _PHRASE_RE.findall(text)}
    if len(found) > 1:
        raise ValueError(
            f"expected at most one evaluative phrase, found buckets {sorted(found)} in {text!r}"
        )
    return found.pop() if found else 0


def _narration_side(text: str) -> int:
    """The half of NARRATION (0 or 1) a SynthMOSI text's narration comes from; -1 if it has none."""
    found = {NARRATION.index(m) // _HALF for m in _NARRATION_RE.findall(text)}
    if len(found) > 1:
        raise ValueError(f"expected narration from one half of NARRATION, found both in {text!r}")
    return found.pop() if found else -1


#: a text opens with narration, has its evaluative core if neutral, closes with narration
_P_OPENING, _P_NEUTRAL_CORE, _P_CLOSING = 0.5, 0.5, 0.3


def _p_no_narration(b: np.ndarray) -> np.ndarray:
    """P(a text of bucket b has no narration sentence), as :func:`_make_text` draws it."""
    core = np.where(b != 0, 1.0, _P_NEUTRAL_CORE)  # without a core the text must narrate
    return (1 - _P_OPENING) * core * (1 - _P_CLOSING)


def _make_text(b: int, rng: np.random.Generator, side: int = -1) -> str:
    def pick(options: Sequence[str]) -> str:
        return options[int(rng.integers(len(options)))]

    def narrate() -> str:  # side >= 0: the same draw, moved to that half
        j = int(rng.integers(len(NARRATION)))
        return NARRATION[j if side < 0 else j % _HALF + _HALF * side]

    parts = [pick(_FILLERS) + narrate()] if rng.random() < _P_OPENING else []
    if b != 0 or rng.random() < _P_NEUTRAL_CORE:  # neutral clips sometimes only narrate
        core = (
            pick(ADJ_TEMPLATES).format(pick(ADJ_PHRASES[b]))
            if rng.random() < 0.6
            else pick(VERB_PHRASES[b])
        )
        parts.append(pick(_FILLERS) + core)
    if rng.random() < _P_CLOSING or not parts:
        parts.append(pick(_FILLERS) + narrate())
    return " ".join(parts)


def label_atoms() -> np.ndarray:
    """The label lattice: multiples of 1/3 and of 1/5 in [-3, 3], as float32-representable
    values."""
    values = {round(k / 3, 6) for k in range(-9, 10)} | {round(k / 5, 6) for k in range(-15, 16)}
    return np.array(sorted(values), dtype=np.float32).astype(np.float64)


@dataclass
class ChannelParams:
    """Frame model of one modality: x_tc = mean_c + a_c s + b_c |s| + o_c + frame_sd_c eps."""

    mean: np.ndarray
    a: np.ndarray
    b: np.ndarray
    frame_sd: np.ndarray
    speaker_sd: np.ndarray
    frames: tuple[int, int]
    nuisance: np.ndarray  # g: the frames' shift per unit of the nuisance u

    def f(self, s: np.ndarray) -> np.ndarray:
        """Noise-free channel means f(s), shape (len(s), d)."""
        s = np.asarray(s, dtype=np.float64)[:, None]
        return self.mean + self.a * s + self.b * np.abs(s)


@dataclass
class SynthParams:
    """Every generative parameter of a SynthMOSI draw (ground truth, for analysis)."""

    atoms: np.ndarray
    prior: np.ndarray
    p_zero: float
    irony_rate: float
    text_noise: float
    visual: ChannelParams
    acoustic: ChannelParams
    speakers: dict[str, int] = field(default_factory=dict)
    nuisance: float = 0.0
    share_speaker: bool = True
    share_frame_count: bool = True


def _channels(
    rng: np.random.Generator,
    dim: int,
    frames: tuple[int, int],
    signal: float,
    polarity_frac: float,
    intensity_frac: float,
    speaker_sd: float,
) -> ChannelParams:
    n_pol = max(1, round(polarity_frac * dim))
    n_int = min(max(1, round(intensity_frac * dim)), dim - n_pol) if dim > 1 else 0
    a, b = np.zeros(dim), np.zeros(dim)
    a[:n_pol] = rng.uniform(0.5, 1.5, n_pol) * rng.choice([-1.0, 1.0], n_pol)
    a *= signal / np.linalg.norm(a)  # sum_c a_c^2 = signal^2, whatever the dimension
    if n_int:
        b[n_pol : n_pol + n_int] = rng.uniform(0.5, 1.5, n_int)
        b *= 0.8 * signal / np.linalg.norm(b)
    perm = rng.permutation(dim)
    return ChannelParams(
        rng.normal(0.0, 1.0, dim),
        a[perm],
        b[perm],
        rng.uniform(0.8, 1.2, dim),
        speaker_sd * rng.uniform(0.75, 1.25, dim),
        frames,
        np.zeros(dim),
    )


def _bucket_given_s(p: SynthParams) -> np.ndarray:
    """p(b | s = atom_k) for b = -3..3, shape (K, 7); edge buckets absorb the tails."""
    b = np.arange(-3.0, 4.0)
    upper, lower = np.where(b >= 3, np.inf, b + 0.5), np.where(b <= -3, -np.inf, b - 0.5)

    def given(e: np.ndarray) -> np.ndarray:  # P(clip(floor(e + noise + 1/2)) = b)
        z = p.text_noise
        return ndtr((upper - e[:, None]) / z) - ndtr((lower - e[:, None]) / z)

    return (1 - p.irony_rate) * given(p.atoms) + p.irony_rate * given(-p.atoms)


def _gauss_loglik(x: np.ndarray, w: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """-1/2 sum_c w_c (x_c - mu_c)^2 per row of x (precisions w alike) and row of mu: (N, M)."""
    return -0.5 * ((w * x**2).sum(1, keepdims=True) - 2 * (w * x) @ mu.T + w @ (mu**2).T)


def _frame_counts(frames: tuple[int, int], u: np.ndarray) -> np.ndarray:
    """Frames per clip from a uniform u (one u per clip sets the visual and the acoustic count)."""
    lo, hi = frames
    return np.minimum(lo + np.floor(u * (hi - lo + 1)).astype(np.int64), hi)


class SynthMOSI:
    """A SynthMOSI draw: ``.splits`` like :func:`~mmim_lite.data.load_dataset`; per-split ground
    truth ``latent`` s, ``ironic``, ``bucket``, ``speaker`` (per clip: the face's, in the clip id),
    ``voice_speaker``, ``nuisance`` u (per clip), ``videos``, ``offsets["v"|"a"]`` (per speaker);
    ``params``."""

    def __init__(
        self,
        splits: dict[str, list[Sample]],
        params: SynthParams,
        latent: dict[str, np.ndarray],
        ironic: dict[str, np.ndarray],
        bucket: dict[str, np.ndarray],
        speaker: dict[str, np.ndarray],
        videos: dict[str, list[str]],
        offsets: dict[str, dict[str, np.ndarray]],
        seed: int,
        voice_speaker: dict[str, np.ndarray],
        nuisance: dict[str, np.ndarray],
    ) -> None:
        self.splits, self.params, self.latent, self.ironic = splits, params, latent, ironic
        self.bucket, self.speaker, self.videos, self.offsets, self.seed = (
            bucket,
            speaker,
            videos,
            offsets,
            seed,
        )
        self.voice_speaker, self.nuisance = voice_speaker, nuisance

    def _samples(self, split: str) -> list[Sample]:
        if split not in self.splits:
            raise ValueError(f"expected split in {list(self.splits)}, found {split!r}")
        return self.splits[split]

    def log_likelihood(self, split: str, modalities: Sequence[str]) -> np.ndarray:
        """log p(observed modalities | s = atom_k), shape (N, K), up to a per-clip constant (a str:
        one modality per letter, "v" or "tva"); the offsets and the nuisance u integrated out."""
        return self._add_log_likelihood(
            split, modalities, np.zeros((len(self._samples(split)), len(self.params.atoms)))
        )

    def _add_log_likelihood(
        self, split: str, modalities: Sequence[str], logp: np.ndarray
    ) -> np.ndarray:
        """``logp`` plus log p(modalities | s). Given s and u the frame means are independent
        Gaussians (precision w with the offset integrated out), so u | s, frames ~ N(m_s, v), v
        = 1 / (1 + sum w g^2), m_s = v sum w g (xbar - f(s)): u adds 1/2 log v + m_s^2 / (2 v)
        (exact Gaussian integral), a text's narration side c adds log P(c | s, frames) = log
        Phi(+-kappa m_s / sqrt(1 + kappa^2 v)) (E Phi(kappa u) over that Gaussian): closed
        forms, no quadrature. kappa = 0: the modalities' terms alone, as before."""
        if any(m not in _MODALITIES for m in modalities) or len(set(modalities)) != len(modalities):
            raise ValueError(
                f"expected distinct modalities from {_MODALITIES}, found {tuple(modalities)}"
            )
        samples, p = self._samples(split), self.params
        wgg, wgx = 0.0, 0.0  # sums over frame channels: w g^2 (N, 1), w g (xbar - f(s)) (N, K)
        for m in modalities:
            if m == "t":
                b = np.array([text_bucket(x.text) for x in samples], dtype=np.int64)
                with np.errstate(divide="ignore"):
                    logp += np.log(_bucket_given_s(p)[:, b + 3].T)
                continue
            ch = p.visual if m == "v" else p.acoustic
            frames = [x.visual if m == "v" else x.acoustic for x in samples]
            lengths = np.array([len(x) for x in frames], dtype=np.float64)[:, None]
            xbar = (
                np.stack([x.mean(axis=0, dtype=np.float64) for x in frames])
                if frames
                else np.zeros((0, len(ch.mean)))
            )
            w = 1.0 / (ch.speaker_sd**2 + ch.frame_sd**2 / lengths)  # offset integrated out
            logp += _gauss_loglik(xbar, w, ch.f(p.atoms))
            wg = w * ch.nuisance
            wgg = wgg + (wg * ch.nuisance).sum(1, keepdims=True)
            wgx = wgx + (wg * xbar).sum(1, keepdims=True) - wg @ ch.f(p.atoms).T
        if p.nuisance:
            v = 1.0 / (1.0 + wgg)
            logp += 0.5 * np.log(v) + v * wgx**2 / 2
            if "t" in modalities:
                side = np.array([_narration_side(x.text) for x in samples])[:, None]
                z = p.nuisance * v * wgx / np.sqrt(1 + p.nuisance**2 * v)
                logp += np.where(side < 0, 0.0, log_ndtr(np.where(side == 1, z, -z)))
        return logp

    def posterior(self, split: str, modalities: Sequence[str] = _MODALITIES) -> np.ndarray:
        """p(s = atom_k | observed modalities), shape (N, K); rows sum to 1."""
        shape = (len(self._samples(split)), len(self.params.atoms))
        logp = self._add_log_likelihood(
            split, modalities, np.broadcast_to(np.log(self.params.prior), shape).copy()
        )
        return np.exp(logp - logsumexp(logp, axis=1, keepdims=True))

    def oracle(self, split: str, modalities: Sequence[str] = _MODALITIES) -> np.ndarray:
        """Posterior median of s (the first atom whose CDF reaches 1/2; MAE-optimal), shape (N,)."""
        cdf = np.cumsum(self.posterior(split, modalities), axis=1)
        return self.params.atoms[
            np.minimum((cdf < 0.5 - 1e-12).sum(axis=1), len(self.params.atoms) - 1)
        ]


def _frames(
    rng: np.random.Generator, ch: ChannelParams, u: np.ndarray, clip_means: np.ndarray
) -> list[np.ndarray]:
    lengths = _frame_counts(ch.frames, u)
    frames = rng.standard_normal(
        (int(lengths.sum()), len(ch.mean)), dtype=np.float32
    ) * ch.frame_sd.astype(np.float32) + np.repeat(clip_means.astype(np.float32), lengths, axis=0)
    return np.split(frames, np.cumsum(lengths)[:-1]) if len(lengths) else []


def make_synthmosi(
    n_train: int = 1284,
    n_valid: int = 229,
    n_test: int = 686,
    seed: int = 0,
    *,
    visual_dim: int = 20,
    acoustic_dim: int = 5,
    visual_frames: Sequence[int] = (10, 50),
    acoustic_frames: Sequence[int] = (10, 50),
    irony_rate: float = 0.1,
    p_zero: float = 0.07,
    text_noise: float = 0.7,
    visual_signal: float = 0.25,
    acoustic_signal: float = 0.2,
    speaker_sd: float = 0.5,
    n_speakers: Sequence[int] = (52, 10, 31),
    nuisance: float = 0.0,
    share_speaker: bool = True,
    share_frame_count: bool = True,
) -> SynthMOSI:
    """Generate SynthMOSI (see the module docstring): by default MOSI's split sizes and speakers,
    20-d visual and 5-d acoustic frames, 10-50 per clip; signal strengths are sums of squared
    loadings, whatever the dimension; ``nuisance`` kappa, ``share_speaker``, ``share_frame_count``:
    the knobs of the module docstring."""
    sizes = dict(zip(SPLITS, (n_train, n_valid, n_test)))
    for name, value in [*sizes.items(), ("visual_dim", visual_dim), ("acoustic_dim", acoustic_dim)]:
        if int(value) != value or value < (0 if name in SPLITS else 1):
            raise ValueError(f"expected a non-negative integer {name}, found {value!r}")
    if len(n_speakers) != 3 or any(int(v) != v or v < 1 for v in n_speakers):
        raise ValueError(
            f"expected n_speakers = (train, valid, test), each >= 1, found {tuple(n_speakers)}"
        )
    for name, (lo, hi) in (("visual_frames", visual_frames), ("acoustic_frames", acoustic_frames)):
        if not 1 <= lo <= hi:
            raise ValueError(f"expected {name} = (lo, hi) with 1 <= lo <= hi, found {(lo, hi)}")
    if not (0 <= irony_rate <= 1 and 0 <= p_zero < 1 and text_noise > 0):
        raise ValueError(
            "expected irony_rate in [0,1], p_zero in [0,1), text_noise > 0; "
            f"found {irony_rate}, {p_zero}, {text_noise}"
        )
    if not 0 <= nuisance < np.inf:
        raise ValueError(f"expected a finite nuisance >= 0, found {nuisance!r}")
    for name, value in (("share_speaker", share_speaker), ("share_frame_count", share_frame_count)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"expected {name} True or False, found {value!r}")
    rng, atoms = np.random.default_rng(seed), label_atoms()
    bumps = 0.45 * np.exp(-0.5 * (atoms + 1.3) ** 2) + 0.55 * np.exp(-0.5 * (atoms - 1.2) ** 2)
    prior = np.where(atoms == 0, 0.0, bumps)
    prior = prior / prior.sum() * (1 - p_zero) + np.where(atoms == 0, p_zero, 0.0)
    params = SynthParams(
        atoms,
        prior,
        p_zero,
        irony_rate,
        text_noise,
        _channels(rng, visual_dim, tuple(visual_frames), visual_signal, 0.3, 0.2, speaker_sd),
        _channels(rng, acoustic_dim, tuple(acoustic_frames), acoustic_signal, 0.2, 0.4, speaker_sd),
    )
    params.nuisance, params.share_speaker = float(nuisance), bool(share_speaker)
    params.share_frame_count, aux = bool(share_frame_count), np.random.default_rng([seed, 1])
    for ch in (params.visual, params.acoustic):
        w = aux.standard_normal(len(ch.mean))
        ch.nuisance = nuisance * ch.frame_sd * w / np.linalg.norm(w)
    used_videos: set[str] = set()
    out: dict[str, dict] = {
        k: {}
        for k in (
            "splits",
            "latent",
            "ironic",
            "bucket",
            "speaker",
            "videos",
            "offsets",
            "voice_speaker",
            "nuisance",
        )
    }
    for split, n, n_spk_default in zip(SPLITS, sizes.values(), n_speakers):
        n_spk = params.speakers[split] = min(n_spk_default, n)
        counts = (
            1 + rng.multinomial(n - n_spk, rng.dirichlet(np.full(n_spk, 2.0)))
            if n_spk
            else np.zeros(0, int)
        )
        speaker, videos = np.repeat(np.arange(n_spk), counts), []
        while len(videos) < n_spk:
            vid = "".join(_ID_CHARS[i] for i in rng.integers(len(_ID_CHARS), size=11))
            if vid not in used_videos:
                used_videos.add(vid)
                videos.append(vid)
        s = atoms[rng.choice(len(atoms), size=n, p=prior)]
        ironic = rng.random(n) < irony_rate
        expressed = np.where(ironic, -s, s)
        bucket = np.clip(
            np.floor(expressed + text_noise * rng.standard_normal(n) + 0.5), -3, 3
        ).astype(np.int64)
        nu, coin, u_voice = aux.standard_normal(n), aux.random(n), aux.random(n)
        side = np.where(coin < ndtr(nuisance * nu), 1, 0) if nuisance else np.full(n, -1)
        voice = speaker if share_speaker or not n else aux.choice(n_spk, size=n, p=counts / n)
        texts = [_make_text(int(b), rng, int(c)) for b, c in zip(bucket, side)]
        offsets = {
            m: rng.standard_normal((n_spk, len(ch.mean))) * ch.speaker_sd
            for m, ch in (("v", params.visual), ("a", params.acoustic))
        }
        u = rng.random(n)
        vis = _frames(
            rng,
            params.visual,
            u,
            params.visual.f(s) + offsets["v"][speaker] + nu[:, None] * params.visual.nuisance,
        )
        aco = _frames(
            *((rng, params.acoustic, u) if share_frame_count else (aux, params.acoustic, u_voice)),
            params.acoustic.f(s) + offsets["a"][voice] + nu[:, None] * params.acoustic.nuisance,
        )
        clip_no = (
            np.concatenate([np.arange(1, c + 1) for c in counts]) if n_spk else np.zeros(0, int)
        )
        clips = [
            Sample(texts[i], vis[i], aco[i], float(s[i]), f"{videos[speaker[i]]}_{clip_no[i]}")
            for i in range(n)
        ]
        for key, value in zip(out, (clips, s, ironic, bucket, speaker, videos, offsets, voice, nu)):
            out[key][split] = value
    return SynthMOSI(params=params, seed=seed, **out)


#: the generator's options on the command line and in a run's data.json: keyword of
#: :func:`make_synthmosi` -> (its flag, metavar)
SYNTH_OPTIONS = {
    "seed": ("--synth-seed", "S"),
    "n_train": ("--n-train", "N"),
    "n_valid": ("--n-valid", "N"),
    "n_test": ("--n-test", "N"),
    "visual_dim": ("--synth-visual-dim", "D"),
    "acoustic_dim": ("--synth-acoustic-dim", "D"),
    "visual_frames": ("--synth-visual-frames", "LO,HI"),
    "acoustic_frames": ("--synth-acoustic-frames", "LO,HI"),
    "irony_rate": ("--synth-irony-rate", "P"),
    "text_noise": ("--synth-text-noise", "SD"),
    "visual_signal": ("--synth-visual-signal", "X"),
    "acoustic_signal": ("--synth-acoustic-signal", "X"),
    "n_speakers": ("--synth-speakers", "TRAIN,VALID,TEST"),
    "nuisance": ("--synth-nuisance", "K"),
    "share_speaker": ("--synth-share-speaker", "BOOL"),
    "share_frame_count": ("--synth-share-frame-count", "BOOL"),
}
#: their defaults, as data.json stores them (JSON: tuples as lists)
SYNTH_DEFAULTS = {
    k: json.loads(json.dumps(v.default))
    for k, v in inspect.signature(make_synthmosi).parameters.items()
    if k in SYNTH_OPTIONS
}


def _frame_count_information(v: tuple[int, int], a: tuple[int, int]) -> float:
    """I(L_v; L_a) in nats, exact: both counts are steps of one uniform u (one interval per
    cell)."""
    edges = np.union1d(*(np.arange(hi - lo + 2) / (hi - lo + 1) for lo, hi in (v, a)))
    mid, mass = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    lv, la = _frame_counts(v, mid), _frame_counts(a, mid)
    pv, pa = (np.bincount(x, weights=mass)[x] for x in (lv, la))  # each interval's marginals
    return float(np.sum(mass * np.log(mass / (pv * pa))))


def modality_mutual_information(
    source: SynthMOSI | SynthParams,
    pairs: Sequence[str] = ("tv", "ta", "va"),
    n: int = 20_000,
    seed: int = 0,
    split: str | None = None,
) -> dict[str, tuple[float, float]]:
    """I(text; face), I(text; voice), I(face; voice) of a generated clip, in nats:
    {pair: (estimate, standard error)}, a pair named by two of "t", "v", "a".

    Each modality reaches the others only through a sufficient statistic: the text through its
    bucket b (its words are drawn given b alone), the frames of m through their count L_m and
    mean xbar_m (deviations from the mean are frame noise; their float32 rounding is ignored).
    Given the label s and the speaker, b, xbar_v and xbar_a are independent,
    xbar_m ~ N(f_m(s) + o_m, frame_sd_m^2 / L_m), and one uniform draw, independent of the rest,
    sets both L_v and L_a. With p(b | s) exact (rounding noise; irony a mixture of e = s, -s):

    - I(text; m) = H(B) - E[H(B | xbar_m, L_m)], p(b | xbar_m, L_m) = sum_s p(s | ...) p(b | s);
    - I(face; voice) = I(L_v; L_a)
      + E[log p(xbar_v, xbar_a | L_v, L_a) - log p(xbar_v | L_v) - log p(xbar_a | L_a)],
      the frame-count term exact (log 41 = 3.71 nats for the default equal ranges), the second
      mediated by s and the speaker.

    H(B) and I(L_v; L_a) are exact; each expectation is a mean over ``n`` clips drawn from the
    generator (``seed``), its standard error the term's standard deviation over sqrt(n).
    ``split=None``: the clip's speaker is a new one, offsets o_v, o_a ~ N(0, speaker_sd^2)
    drawn apart per modality and integrated out (as :meth:`SynthMOSI.posterior` does), so the
    speaker adds nothing that face and voice share: a held-out clip. ``split`` named (``source``
    a :class:`SynthMOSI`): the speaker is one of that split's, by its share of the clips, with
    its drawn offsets, a latent that face and voice share beside s. ``share_speaker=False``: the
    voice's speaker is drawn by its own shares, apart from the face's (nothing shared then);
    ``share_frame_count=False``: I(L_v; L_a) = 0.

    ``nuisance`` kappa > 0: the latent u ~ N(0, 1) shifts xbar_m by u g_m and sets the narration
    side c of a text that narrates (P(c = 1 | u) = Phi(kappa u); whether it narrates depends on b
    alone), so the text's statistic is (b, c or none). Given s and the speaker, u is integrated in
    closed form (Gaussian; as :meth:`SynthMOSI.posterior`): with r = g' W (xbar - mu) and
    k = g' W g (W the precisions), log p(xbar | z) gains r^2 / (2 (1 + k)) - log(1 + k) / 2, and
    u | xbar, z ~ N(r / (1 + k), 1 / (1 + k)) gives P(c = 1 | xbar, z) = Phi(kappa m / sqrt(1 +
    kappa^2 v)); face and voice given z are then joint Gaussians (r and k summed). With kappa > 0 a
    split's speakers must be shared by face and voice (``share_speaker``)."""
    p = source.params if isinstance(source, SynthMOSI) else source
    bad = [q for q in pairs if len(q) != 2 or q[0] == q[1] or not set(q) <= set(_MODALITIES)]
    if bad or int(n) != n or n < 2:
        raise ValueError(f"expected pairs of two of {_MODALITIES} and n >= 2, found {bad}, n={n}")
    chans = {"v": p.visual, "a": p.acoustic}
    if split is None:
        weights = {m: np.ones(1) for m in chans}
        offsets = {m: np.zeros((1, len(ch.mean))) for m, ch in chans.items()}
        spk_var = {m: ch.speaker_sd**2 for m, ch in chans.items()}
    elif isinstance(source, SynthMOSI):
        if not source._samples(split):  # a clear error for an unknown split, too
            raise ValueError(f"expected a split with clips, found {split!r} empty")
        weights = {
            m: np.bincount(x, minlength=p.speakers[split]) / len(x)
            for m, x in (("v", source.speaker[split]), ("a", source.voice_speaker[split]))
        }
        offsets, spk_var = source.offsets[split], {m: 0.0 for m in chans}
    else:
        raise ValueError(f"expected a SynthMOSI with split={split!r}, found SynthParams")
    if p.nuisance and split is not None and not p.share_speaker:
        raise ValueError("expected share_speaker with nuisance > 0 and a split, found it off")
    rng, n_atoms, n_spk = np.random.default_rng(seed), len(p.atoms), len(weights["v"])
    s = rng.choice(n_atoms, size=n, p=p.prior)
    spk = {"v": rng.choice(n_spk, size=n, p=weights["v"])}
    u = {"v": rng.random(n)}
    shared = p.share_speaker or split is None  # else z = s, each modality's speaker summed out
    spk["a"] = spk["v"] if shared else rng.choice(n_spk, size=n, p=weights["a"])
    u["a"] = u["v"] if p.share_frame_count else rng.random(n)
    with np.errstate(divide="ignore"):  # latent z = (s, speaker)
        log_ps = np.log(p.prior)
        log_pz = {m: (log_ps[:, None] + np.log(weights[m])).ravel() for m in chans}
    nu = rng.standard_normal((n, 1))  # the nuisance u, one per clip (unused at kappa = 0)
    xbar, prec, mu = {}, {}, {}
    for m, ch in chans.items():
        sd = np.sqrt(spk_var[m] + ch.frame_sd**2 / _frame_counts(ch.frames, u[m])[:, None])
        xbar[m] = ch.f(p.atoms)[s] + offsets[m][spk[m]] + sd * rng.standard_normal(sd.shape)
        xbar[m] += nu * ch.nuisance
        prec[m] = sd**-2
        mu[m] = (ch.f(p.atoms)[:, None] + offsets[m][None]).reshape(n_atoms * n_spk, -1)
    b_given_s, terms = _bucket_given_s(p), {q: np.empty(n) for q in pairs}
    gain = lambda r, k: r**2 / (2 * (1 + k)) - np.log1p(k) / 2  # noqa: E731 - u integrated out
    step = max(1, 2**21 // (n_atoms * n_spk))
    for i in range(0, n, step):
        base, r, k = {}, {}, {}
        for m, ch in chans.items():
            x, w, g = xbar[m][i : i + step], prec[m][i : i + step], ch.nuisance
            base[m] = log_pz[m] + _gauss_loglik(x, w, mu[m])  # log p(z, xbar_m) but for u
            r[m], k[m] = (w * x) @ g[:, None] - (w * g) @ mu[m].T, (w * g**2).sum(1, keepdims=True)
        ll = {m: base[m] + gain(r[m], k[m]) for m in chans}  # up to a per-clip constant
        if not shared:
            ll = {m: logsumexp(x.reshape(len(x), n_atoms, n_spk), 2) for m, x in ll.items()}
        lz = log_pz["v"] if shared else log_ps
        for q in pairs:
            if "t" in q and not p.nuisance:  # H(B | xbar_m, L_m) of each clip
                post = np.exp(ll[q.strip("t")] - logsumexp(ll[q.strip("t")], 1, keepdims=True))
                pb = post.reshape(len(post), n_atoms, -1).sum(2) @ b_given_s
                terms[q][i : i + step] = entr(pb).sum(1)
            elif "t" in q:  # H(B, C | xbar_m, L_m): C the side, or none if the text has none
                m, kappa = q.strip("t"), p.nuisance
                post = np.exp(ll[m] - logsumexp(ll[m], 1, keepdims=True))
                one = ndtr(kappa * r[m] / (1 + k[m]) / np.sqrt(1 + kappa**2 / (1 + k[m])))
                pb1, pb0 = (
                    (post * c).reshape(len(post), n_atoms, -1).sum(2) @ b_given_s
                    for c in (one, 1 - one)
                )
                quiet = _p_no_narration(np.arange(-3, 4))
                table = np.hstack([quiet * (pb1 + pb0), (1 - quiet) * pb1, (1 - quiet) * pb0])
                terms[q][i : i + step] = entr(table).sum(1)
            else:  # the per-clip constants cancel
                with np.errstate(invalid="ignore"):  # -inf - -inf where the prior is 0
                    joint = (  # not shared: kappa = 0, face and voice independent given s
                        base["v"] + base["a"] + gain(r["v"] + r["a"], k["v"] + k["a"]) - lz
                        if shared
                        else ll["v"] + ll["a"] - lz
                    )
                    joint = np.where(np.isfinite(lz), joint, -np.inf)
                terms[q][i : i + step] = (
                    logsumexp(joint, 1) - logsumexp(ll["v"], 1) - logsumexp(ll["a"], 1)
                )
    p_b = p.prior @ b_given_s
    h_b = entr(p_b).sum()
    if p.nuisance:  # H(B, C) = H(B) + H(C | B): no narration, or either side with P 1/2
        quiet = _p_no_narration(np.arange(-3, 4))
        h_b += p_b @ (entr(quiet) + entr(1 - quiet) + (1 - quiet) * np.log(2))
    i_l = (
        _frame_count_information(p.visual.frames, p.acoustic.frames) if p.share_frame_count else 0.0
    )
    return {
        q: (
            float(h_b - t.mean() if "t" in q else i_l + t.mean()),
            float(t.std(ddof=1) / np.sqrt(n)),
        )
        for q, t in terms.items()
    }


def label_starvation(
    data: SynthMOSI,
    n_labels: Sequence[int | None] = (64, None),
    modalities: str = "tva",
    seed: int = 0,
) -> dict[str, float]:
    """Are the raw features label-starved? Test-split R^2 of ridge regressions of the label on
    per-clip features (the text bucket one-hot for "t", the frame means of face "v" and voice "a"),
    each fitted on ``n`` random training clips (``None``: all; standardised features, the penalty
    by leave-one-out CV, RidgeCV over 1e-3..1e4), keyed ``str(n)`` or ``"all"``; ``"oracle"``: the
    R^2 of the posterior mean given the same modalities (the best any predictor of them reaches)."""
    from sklearn.linear_model import RidgeCV  # here: the CLI starts without scikit-learn (3 s)
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not modalities or any(m not in _MODALITIES for m in modalities):
        raise ValueError(f"expected modalities from {_MODALITIES}, found {modalities!r}")

    def features(split: str) -> np.ndarray:
        xs = data._samples(split)
        cols = [np.eye(7)[[text_bucket(x.text) + 3 for x in xs]]] if "t" in modalities else []
        cols += [
            np.stack([(x.visual if m == "v" else x.acoustic).mean(0, dtype=np.float64) for x in xs])
            for m in "va"
            if m in modalities
        ]
        return np.hstack(cols)

    x_train, x_test = features("train"), features("test")
    y_train, y_test = data.latent["train"], data.latent["test"]
    rng, out = np.random.default_rng(seed), {}
    for n in n_labels:
        if n is not None and not 2 <= n <= len(y_train):
            raise ValueError(f"expected n_labels between 2 and {len(y_train)} (or None), found {n}")
        rows = np.arange(len(y_train)) if n is None else rng.choice(len(y_train), n, replace=False)
        ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15)))
        out["all" if n is None else str(n)] = float(
            r2_score(y_test, ridge.fit(x_train[rows], y_train[rows]).predict(x_test))
        )
    mean = data.posterior("test", tuple(modalities)) @ data.params.atoms
    return {**out, "oracle": float(r2_score(y_test, mean))}
