"""The MMIM model (Sec. 3, Fig. 1): encoders (Eq. 2), fusion, BA terms (Eqs. 3-9), CPC heads
(Eqs. 10-12) and, optionally, a cross-modal InfoNCE (not in the paper); :meth:`MMIM.losses` gives
the stage-2 objective (Eq. 14), :meth:`MMIM.lld_loss` the stage-1 one (Eq. 4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from .bounds import (
    CPCHead,
    GaussianPredictor,
    HistoryMemory,
    ba_lower_bound,
    polarity_entropy,
    standardize,
    symmetric_infonce_loss,
)
from .config import ModelConfig
from .text import cls_features, resolve_text_encoder

__all__ = ["SequenceEncoder", "FusionNetwork", "MMIMOutput", "MMIM"]


class SequenceEncoder(nn.Module):
    """Eq. 2's sLSTM for m in {v, a}: an LSTM over each sample's real frames (packed), then Linear;
    ``mean=True``: the mean of the real frames instead of the LSTM (not in the paper; frame_encoder
    'mean')."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, mean: bool = False) -> None:
        super().__init__()
        self.lstm = None if mean else nn.LSTM(in_dim, hidden, num_layers=1, batch_first=True)
        self.proj = nn.Linear(in_dim if mean else hidden, out_dim)

    @property
    def in_dim(self) -> int:
        """The frame feature size: the LSTM's input size (``mean``: the projection's)."""
        return self.proj.in_features if self.lstm is None else self.lstm.input_size

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[2] != self.in_dim:
            raise ValueError(
                f"expected a (B, L, {self.in_dim}) sequence batch, got {tuple(x.shape)}"
            )
        lengths = lengths.detach().to("cpu", torch.int64).clamp(min=1, max=x.shape[1])
        if self.lstm is None:
            real = (
                torch.arange(x.shape[1])[None] < lengths[:, None]
            )  # (B, L): True on the real frames
            return self.proj((x * real.to(x)[..., None]).sum(1) / lengths.to(x)[:, None])
        _, (h_n, _) = self.lstm(
            pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        )
        return self.proj(h_n[-1])


class FusionNetwork(nn.Module):
    """Fusion F and regression head: dropout -> Linear -> tanh -> Linear -> tanh (= Z) -> Linear."""

    def __init__(self, in_dim: int, fusion_dim: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(in_dim, fusion_dim)
        self.fc2 = nn.Linear(fusion_dim, fusion_dim)
        self.head = nn.Linear(fusion_dim, 1)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(Z, prediction)`` with shapes (B, fusion_dim) and (B,)."""
        z = torch.tanh(self.fc2(torch.tanh(self.fc1(self.dropout(h)))))
        return z, self.head(z).squeeze(-1)


@dataclass
class MMIMOutput:
    """One forward pass (dict keys: pairs "tv"/"ta"/"va", modalities t/v/a)."""

    pred: Tensor  #: (B,) sentiment prediction
    z: Tensor  #: (B, fusion_dim) fusion result Z
    h_t: Tensor  #: (B, d_t)
    h_v: Tensor  #: (B, d_v)
    h_a: Tensor  #: (B, d_a)
    log_q: dict[str, Tensor] = field(default_factory=dict)  #: pair -> (B,) log q(y|x) (Eq. 4)
    entropy: dict[str, Tensor] = field(default_factory=dict)  #: pair -> scalar H(Y) (Eq. 8)
    cpc_loss: dict[str, Tensor] = field(default_factory=dict)  #: m -> scalar L_N^{z,m} (Eq. 11)
    cpc_scores: dict[str, Tensor] = field(default_factory=dict)  #: m -> (B,) s(h_m, Z) (Eq. 10)
    xmodal_loss: dict[str, Tensor] = field(default_factory=dict)  #: pair -> scalar (not in paper)


class MMIM(nn.Module):
    """MultiModal InfoMax (Sec. 3) from a :class:`ModelConfig`, the visual / acoustic sizes and
    optionally a resolved ``(model, tokenizer)``; one history memory per BA target modality (H(Y)
    depends on Y only).

    Beyond the paper, both off by default, their parameters trained in stage 2:
    ``entropy_projection="tanh"`` takes H(Y) (Eqs. 5-8) of ``tanh(W y)`` in
    ``entropy_projection_dim`` (0: d_y // 4) dimensions, one W per target modality: the authors'
    code, not Eq. 8 on the raw h_y (bounded scale and dimension); ``xmodal_pairs``: per pair xy,
    the :func:`~mmim_lite.bounds.symmetric_infonce_loss` of linear ``xmodal_dim``-d projections of
    h_x and h_y (one head each), on every clip, labelled or not, like the CPC terms."""

    def __init__(
        self,
        config: ModelConfig,
        visual_dim: int,
        acoustic_dim: int,
        text_encoder: tuple[nn.Module, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, val in (("visual_dim", visual_dim), ("acoustic_dim", acoustic_dim)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be an int >= 1, got {val!r}")
        self.config = config
        self.text_model, self.tokenizer = text_encoder or resolve_text_encoder(config.text_encoder)
        if config.freeze_text:
            self.text_model.requires_grad_(False)
        self.dims = dims = {
            "t": self.text_model.config.hidden_size,
            "v": config.visual_out,
            "a": config.acoustic_out,
        }
        mean = config.frame_encoder == "mean"
        self.visual_enc = SequenceEncoder(visual_dim, config.visual_hidden, config.visual_out, mean)
        self.acoustic_enc = SequenceEncoder(
            acoustic_dim, config.acoustic_hidden, config.acoustic_out, mean
        )
        self.fusion = FusionNetwork(
            sum(dims[m] for m in config.modalities), config.fusion_dim, config.dropout
        )
        self.predictors = nn.ModuleDict(
            {
                p: GaussianPredictor(
                    dims[p[0]], dims[p[1]], config.predictor_hidden, config.q_min_logvar
                )
                for p in config.ba_pairs
            }
        )  # Eq. 4
        self.cpc_heads = nn.ModuleDict(
            {m: CPCHead(dims[m], config.fusion_dim, config.cpc_layers) for m in config.cpc_terms}
        )  # G_phi (Eq. 10)
        self.memories = {
            m: HistoryMemory(config.memory_size) for m in sorted({p[1] for p in config.ba_pairs})
        }
        tanh = config.entropy_projection == "tanh"
        self.entropy_proj = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(  # the authors' tanh(W y)
                        dims[m], config.entropy_projection_dim or max(1, dims[m] // 4)
                    ),
                    nn.Tanh(),
                )
                if tanh
                else nn.Identity()
                for m in self.memories
            }
        )
        self.xmodal_heads = nn.ModuleDict(
            {
                p: nn.ModuleList([nn.Linear(dims[m], config.xmodal_dim) for m in p])
                for p in config.xmodal_pairs
            }
        )

    def predictor_parameters(self) -> list[nn.Parameter]:
        """theta_q: updated by stage 1 only."""
        return list(self.predictors.parameters())

    def text_parameters(self) -> list[nn.Parameter]:
        """Trainable text-encoder parameters (empty when frozen)."""
        return [p for p in self.text_model.parameters() if p.requires_grad]

    def main_parameters(self) -> list[nn.Parameter]:
        """Stage-2 parameters other than the text encoder's: LSTMs, fusion, head, CPC heads and the
        projections of ``entropy_projection`` and ``xmodal_pairs``."""
        skip = {id(p) for p in self.text_model.parameters()} | {
            id(p) for p in self.predictor_parameters()
        }
        return [p for p in self.parameters() if id(p) not in skip and p.requires_grad]

    def train(self, mode: bool = True) -> MMIM:
        super().train(mode)
        if self.config.freeze_text:
            self.text_model.eval()  # a frozen encoder is deterministic (no dropout): cacheable
        return self

    def encode_text(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Eq. 2: h_t, the last layer's [CLS] vector (B, d_t)."""
        return cls_features(
            self.text_model,
            batch["input_ids"],
            batch["attention_mask"],
            batch.get("token_type_ids"),
            packed=self.config.pack_text,
        )

    def encode(
        self, batch: Mapping[str, Tensor], h_t: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. 2: ``(h_t, h_v, h_a)``; a given ``h_t`` (cached [CLS] features) skips the text
        encoder."""
        h_t = self.encode_text(batch) if h_t is None else h_t
        return (
            h_t,
            self.visual_enc(batch["visual"], batch["visual_lengths"]),
            self.acoustic_enc(batch["acoustic"], batch["acoustic_lengths"]),
        )

    def ba_targets(self, h: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The y of each BA target modality (float32): h_y, or :func:`standardize` (h_y) with
        ``ba_standardize``."""
        return {
            m: standardize(h[m].float()) if self.config.ba_standardize else h[m].float()
            for m in self.memories
        }

    def log_q(
        self, h: Mapping[str, Tensor], y: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Eq. 4: per pair ``xy`` the per-sample log q(y | h_x), shape (B,); ``y``:
        :meth:`ba_targets` (h)."""
        y = self.ba_targets(h) if y is None else y
        return {p: q.log_prob(h[p[0]].float(), y[p[1]]) for p, q in self.predictors.items()}

    def lld_loss(self, h_t: Tensor, h_v: Tensor, h_a: Tensor) -> Tensor:
        """Stage 1, Eq. 4: L_lld = -sum_pairs mean_i log q(y_i | x_i) (0 without BA pairs)."""
        lq = self.log_q({"t": h_t, "v": h_v, "a": h_a})
        return (
            -torch.stack([q.mean() for q in lq.values()]).sum()
            if lq
            else h_t.new_zeros((), dtype=torch.float32)
        )

    def _encode_and_fuse(
        self, batch: Mapping[str, Tensor], h_t: Tensor | None
    ) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Eq. 2 then the fusion, in float32 outside autocast: ``({m: h_m}, Z, prediction)``."""
        h_t, h_v, h_a = self.encode(batch, h_t)
        with torch.autocast(device_type=h_v.device.type, enabled=False):
            h = {"t": h_t.float(), "v": h_v.float(), "a": h_a.float()}
            return h, *self.fusion(torch.cat([h[m] for m in self.config.modalities], dim=-1))

    def forward(
        self, batch: Mapping[str, Tensor], h_t: Tensor | None = None, update_memory: bool = False
    ) -> MMIMOutput:
        """Prediction, Z, h_m and all MI terms (float32); ``update_memory``: then push h_y to the
        memories (Alg. 1)."""
        h, z, pred = self._encode_and_fuse(batch, h_t)
        with torch.autocast(device_type=z.device.type, enabled=False):
            out = MMIMOutput(pred=pred, z=z, h_t=h["t"], h_v=h["v"], h_a=h["a"])
            if self.predictors:
                y = self.ba_targets(h)
                out.log_q = self.log_q(h, y)
                if (
                    "labels" in batch
                ):  # H(Y) needs each clip's polarity (Eq. 5); NaN (unlabelled): predicted
                    labels = batch["labels"].float()
                    labels = torch.where(labels.isnan(), pred.detach(), labels)
                    e, cfg = {m: self.entropy_proj[m](v) for m, v in y.items()}, self.config
                    ent = {
                        m: polarity_entropy(e[m], labels, mem, cfg.entropy_mode, cfg.entropy_eps)
                        for m, mem in self.memories.items()
                    }
                    for m, mem in self.memories.items() if update_memory else ():
                        mem.push(e[m].detach(), labels.detach())
                    out.entropy = {p: ent[p[1]] for p in self.predictors}
                elif update_memory:
                    raise ValueError(
                        "update_memory=True needs batch['labels'] (the memory stores polarities)"
                    )
            for m, head in self.cpc_heads.items():
                out.cpc_loss[m], out.cpc_scores[m] = head(h[m], z)
            for p, (f_x, f_y) in self.xmodal_heads.items():
                out.xmodal_loss[p] = symmetric_infonce_loss(
                    f_x(h[p[0]]), f_y(h[p[1]]), self.config.xmodal_temperature
                )
        return out

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Tensor], h_t: Tensor | None = None) -> Tensor:
        """Only the prediction (B,), without the MI terms (evaluation)."""
        return self._encode_and_fuse(batch, h_t)[2]

    def losses(self, out: MMIMOutput, labels: Tensor) -> dict[str, Tensor]:
        """Stage-2 terms: ``task`` (Eq. 13, MAE over the labelled clips: NaN labels are skipped),
        ``cpc`` (Eq. 12), ``ba`` (Eq. 9: -sum_pairs I_BA, I_BA = mean log q + H(Y), Eq. 3), ``main``
        (Eq. 14), and per term ``cpc_<m>`` and ``ba_<xy>`` (I_BA itself) for tracing; with
        ``xmodal_pairs`` also ``xmodal_<xy>`` and their sum ``xmodal``, added to ``main`` times
        ``xmodal_weight``."""
        errors, known = (out.pred - labels.float()).abs(), ~labels.isnan()
        task = errors.mean() if known.all() else errors[known].sum() / known.sum().clamp_min(1)
        terms: dict[str, Tensor] = {"task": task}
        zero = terms["task"].new_zeros(())
        terms.update({f"cpc_{m}": loss for m, loss in out.cpc_loss.items()})
        terms.update({f"ba_{p}": ba_lower_bound(lq, out.entropy[p]) for p, lq in out.log_q.items()})
        terms["cpc"] = sum(out.cpc_loss.values(), zero)  # Eq. 12
        terms["ba"] = -sum((terms[f"ba_{p}"] for p in out.log_q), zero)  # Eq. 9
        terms["main"] = (
            terms["task"] + self.config.alpha * terms["cpc"] + self.config.beta * terms["ba"]
        )
        if out.xmodal_loss:  # not in the paper
            terms.update({f"xmodal_{p}": loss for p, loss in out.xmodal_loss.items()})
            terms["xmodal"] = sum(out.xmodal_loss.values(), zero)
            terms["main"] = terms["main"] + self.config.xmodal_weight * terms["xmodal"]
        return terms

    def memory_state_dict(self) -> dict[str, dict]:
        """History memories on the CPU (checkpointable, ``weights_only``-safe)."""
        return {m: memory.state_dict() for m, memory in self.memories.items()}

    def load_memory_state_dict(self, state: Mapping[str, Mapping]) -> None:
        """Restore :meth:`memory_state_dict` output onto this model's device."""
        for m, s in state.items():
            self.memories[m].load_state_dict(dict(s), next(self.parameters()).device)
