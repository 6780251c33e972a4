"""The MMIM model (Sec. 3): encoders, fusion network, inter-modality BA terms and CPC heads.

Data flow of one batch (Fig. 1)::

    text  --BERT [CLS]-------------> h_t --+
    visual --LSTM(last h) -> Linear -> h_v --+--> fusion F --> Z --> Linear --> prediction
    acoustic --LSTM(last h) -> Linear -> h_a --+
    BA terms (Eq. 3-9):  log q(h_y | h_x) for each configured pair xy, H(h_y) by polarity GMM
    CPC terms (Eq. 10-12): G_phi(Z) scored against h_m, m in {t, v, a}

:class:`MMIM` returns all of these in an :class:`MMIMOutput`; :meth:`MMIM.losses` combines them
into the stage-2 objective L_main = L_task + alpha L_CPC + beta L_BA (Eq. 14) and
:meth:`MMIM.lld_loss` gives the stage-1 objective L_lld (Eq. 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from . import bounds
from .config import MMIMConfig
from .text import TINY_BERT, TextEncoderError, cls_features, resolve_text_encoder

__all__ = [
    "TextEncoderError",
    "resolve_text_encoder",
    "SequenceEncoder",
    "FusionNetwork",
    "MMIMOutput",
    "MMIM",
    "TINY_BERT",
]

# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------
class SequenceEncoder(nn.Module):
    """Eq. 2's sLSTM for m in {v, a}: unidirectional LSTM over the real frames, then Linear.

    The padded batch (B, L, d) is packed by ``lengths`` so that the final hidden state of
    sample i is taken after its own last frame, whatever the padding.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=1, batch_first=True)
        self.proj = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[2] != self.in_dim:
            raise ValueError(f"expected a (B, L, {self.in_dim}) sequence batch, got {tuple(x.shape)}")
        lengths = lengths.detach().to("cpu", torch.int64).clamp(min=1, max=x.shape[1])
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
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
    """Everything one forward pass produces (dict keys: pairs "tv"/"ta"/"va", modalities t/v/a)."""

    pred: Tensor  #: (B,) sentiment prediction
    z: Tensor  #: (B, fusion_dim) fusion result Z
    h_t: Tensor  #: (B, d_t)
    h_v: Tensor  #: (B, d_v)
    h_a: Tensor  #: (B, d_a)
    log_q: dict[str, Tensor] = field(default_factory=dict)  #: pair -> (B,) log q(y|x) (Eq. 4)
    entropy: dict[str, Tensor] = field(default_factory=dict)  #: pair -> scalar H(Y) (Eq. 8)
    cpc_loss: dict[str, Tensor] = field(default_factory=dict)  #: m -> scalar L_N^{z,m} (Eq. 11)
    cpc_scores: dict[str, Tensor] = field(default_factory=dict)  #: m -> (B,) s(h_m, Z) (Eq. 10)


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
class MMIM(nn.Module):
    """MultiModal InfoMax (Sec. 3) for a config, visual and acoustic feature sizes.

    ``text_encoder`` may pass an already resolved ``(model, tokenizer)``; by default it is
    :func:`resolve_text_encoder` of ``config.text_encoder``.  The history memories (one per BA
    target modality, shared by the pairs with that target since H(Y) depends on Y only) are
    plain attributes, saved with :meth:`memory_state_dict`.
    """

    def __init__(self, config: MMIMConfig, visual_dim: int, acoustic_dim: int,
                 text_encoder: tuple[nn.Module, Any] | None = None) -> None:
        super().__init__()
        for name, val in (("visual_dim", visual_dim), ("acoustic_dim", acoustic_dim)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be an int >= 1, got {val!r}")
        self.config = config
        self.text_model, self.tokenizer = text_encoder or resolve_text_encoder(config.text_encoder)
        if config.freeze_text:
            self.text_model.requires_grad_(False)
        dims = {"t": int(self.text_model.config.hidden_size), "v": config.visual_out,
                "a": config.acoustic_out}
        self.dims = dims
        self.visual_enc = SequenceEncoder(visual_dim, config.visual_hidden, config.visual_out)
        self.acoustic_enc = SequenceEncoder(acoustic_dim, config.acoustic_hidden, config.acoustic_out)
        self.fusion = FusionNetwork(sum(dims.values()), config.fusion_dim, config.dropout)
        self.predictors = nn.ModuleDict({  # q(y|x) for pair "xy" (Eq. 4)
            p: bounds.GaussianPredictor(dims[p[0]], dims[p[1]], config.predictor_hidden, config.q_min_logvar)
            for p in config.ba_pairs})
        self.cpc_heads = nn.ModuleDict({  # G_phi for L_N^{z,m} (Eq. 10)
            m: bounds.CPCHead(dims[m], config.fusion_dim, config.cpc_layers)
            for m in config.cpc_terms})
        targets = sorted({p[1] for p in config.ba_pairs})
        self.memories: dict[str, bounds.HistoryMemory] = {
            m: bounds.HistoryMemory(config.memory_size) for m in targets}

    # -- parameter groups (Algorithm 1) ------------------------------------------------------
    def predictor_parameters(self) -> list[nn.Parameter]:
        """theta_q: the parameters stage 1 updates and stage 2 never does."""
        return list(self.predictors.parameters())

    def text_parameters(self) -> list[nn.Parameter]:
        """Trainable text-encoder parameters (empty when frozen); stage 2 at lr_bert."""
        return [p for p in self.text_model.parameters() if p.requires_grad]

    def main_parameters(self) -> list[nn.Parameter]:
        """All stage-2 parameters except the text encoder's: LSTMs, fusion, head, CPC heads."""
        skip = {id(p) for p in self.text_model.parameters()} | {id(p) for p in self.predictor_parameters()}
        return [p for p in self.parameters() if id(p) not in skip and p.requires_grad]

    def train(self, mode: bool = True) -> "MMIM":
        super().train(mode)
        if self.config.freeze_text:
            self.text_model.eval()  # a frozen encoder is deterministic (no dropout): cacheable
        return self

    # -- Eq. 2 -----------------------------------------------------------------------------
    def encode_text(self, batch: Mapping[str, Tensor]) -> Tensor:
        """h_t: the last layer's [CLS] vector (B, d_t)."""
        grad = torch.is_grad_enabled() and not self.config.freeze_text
        with torch.set_grad_enabled(grad):
            return cls_features(self.text_model, batch["input_ids"], batch["attention_mask"],
                                batch.get("token_type_ids"), packed=self.config.pack_text)

    def encode(self, batch: Mapping[str, Tensor], h_t: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(h_t, h_v, h_a)`` (Eq. 2); a given ``h_t`` (cached [CLS] features) skips the text encoder."""
        if h_t is None:
            h_t = self.encode_text(batch)
        h_v = self.visual_enc(batch["visual"], batch["visual_lengths"])
        h_a = self.acoustic_enc(batch["acoustic"], batch["acoustic_lengths"])
        return h_t, h_v, h_a

    # -- Eq. 3-9 ---------------------------------------------------------------------------
    def log_q(self, h: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per pair ``xy`` the per-sample log density log q(h_y | h_x) (Eq. 4), shape (B,).

        The predictors' log-variance has the soft floor ``config.q_min_logvar`` (see
        :class:`bounds.GaussianPredictor`): without it, on SynthMOSI every seed ended clearly worse
        (test MAE 0.835 vs 0.778 over 5 seeds; book chapter 6)."""
        return {p: q.log_prob(h[p[0]].float(), h[p[1]].float()) for p, q in self.predictors.items()}

    def lld_loss(self, h_t: Tensor, h_v: Tensor, h_a: Tensor) -> Tensor:
        """Stage 1, Eq. 4: L_lld = -sum_pairs mean_i log q(y_i | x_i) (0 without BA pairs)."""
        log_q = self.log_q({"t": h_t, "v": h_v, "a": h_a})
        if not log_q:
            return h_t.new_zeros((), dtype=torch.float32)
        return -torch.stack([lq.mean() for lq in log_q.values()]).sum()

    def entropies(self, h: Mapping[str, Tensor], labels: Tensor, update_memory: bool = False) -> dict[str, Tensor]:
        """H(h_m) for every BA target m (Eq. 5-8) from the batch plus the history memory.

        As in Algorithm 1 the memory is read first and, if ``update_memory``, the detached
        batch is pushed afterwards (the oldest batch drops out)."""
        out: dict[str, Tensor] = {}
        for m, memory in self.memories.items():
            y = h[m].float()
            out[m] = bounds.polarity_entropy(y, labels, memory=memory, mode=self.config.entropy_mode,
                                             eps=self.config.entropy_eps)
            if update_memory:
                memory.push(y.detach(), labels.detach())
        return out

    # -- forward ---------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Tensor], h_t: Tensor | None = None,
                update_memory: bool = False) -> MMIMOutput:
        """Prediction, Z, h_m and every MI term for one collated batch.

        ``h_t``: cached text features (B, d_t) to use instead of running the text encoder.
        ``update_memory``: push this batch's detached h_y into the history memories (stage 2).
        Without ``batch["labels"]`` the entropies are left out (``entropy`` is empty); everything
        else, the CPC scores included, is computed.  The MI terms are computed in float32
        (outside any autocast)."""
        h_t, h_v, h_a = self.encode(batch, h_t)
        with torch.autocast(device_type=h_v.device.type, enabled=False):
            h = {"t": h_t.float(), "v": h_v.float(), "a": h_a.float()}
            z, pred = self.fusion(torch.cat([h["t"], h["v"], h["a"]], dim=-1))
            out = MMIMOutput(pred=pred, z=z, h_t=h["t"], h_v=h["v"], h_a=h["a"])
            if self.predictors:
                out.log_q = self.log_q(h)
                if "labels" in batch:  # H(Y) needs each clip's polarity (Eq. 5): none for unlabelled clips
                    ent = self.entropies(h, batch["labels"].float(), update_memory=update_memory)
                    out.entropy = {p: ent[p[1]] for p in self.predictors}
                elif update_memory:
                    raise ValueError("update_memory=True needs batch['labels'] (the memory stores polarities)")
            for m, head in self.cpc_heads.items():
                out.cpc_loss[m], out.cpc_scores[m] = head(h[m], z)
        return out

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Tensor], h_t: Tensor | None = None) -> Tensor:
        """Only the prediction (B,), without the MI terms (evaluation)."""
        h_t, h_v, h_a = self.encode(batch, h_t)
        with torch.autocast(device_type=h_v.device.type, enabled=False):
            _, pred = self.fusion(torch.cat([h_t.float(), h_v.float(), h_a.float()], dim=-1))
        return pred

    def losses(self, out: MMIMOutput, labels: Tensor) -> dict[str, Tensor]:
        """Stage-2 terms: ``task`` (Eq. 13, MAE), ``cpc`` (Eq. 12), ``ba`` (Eq. 9), ``main`` (Eq. 14).

        L_BA = -sum_pairs I_BA^{xy} with I_BA = mean log q + H(Y) (Eq. 3).  Gradients of the
        log q term reach both encoders through x and y (q's own parameters are held fixed by
        the optimiser), those of H(Y) reach the y encoder.  Per-term entries ``cpc_<m>`` and
        ``ba_<xy>`` (the bound I_BA itself) are included for tracing.
        """
        terms: dict[str, Tensor] = {"task": (out.pred - labels.float()).abs().mean()}
        zero = terms["task"].new_zeros(())
        for m, loss in out.cpc_loss.items():
            terms[f"cpc_{m}"] = loss
        for p, lq in out.log_q.items():
            terms[f"ba_{p}"] = bounds.ba_lower_bound(lq, out.entropy[p])
        cpc = sum((out.cpc_loss[m] for m in out.cpc_loss), zero)
        ba = -sum((terms[f"ba_{p}"] for p in out.log_q), zero)
        terms["cpc"], terms["ba"] = cpc, ba
        terms["main"] = terms["task"] + self.config.alpha * cpc + self.config.beta * ba
        return terms

    # -- memory state ----------------------------------------------------------------------
    def memory_state_dict(self) -> dict[str, dict]:
        """History memories as tensors/ints on the CPU (checkpointable, weights_only-safe)."""
        out = {}
        for m, memory in self.memories.items():
            state = memory.state_dict()
            state["y"] = [y.cpu() for y in state["y"]]
            state["labels"] = [lab.cpu() for lab in state["labels"]]
            out[m] = state
        return out

    def load_memory_state_dict(self, state: Mapping[str, Mapping]) -> None:
        if set(state) != set(self.memories):
            raise ValueError(f"memory state holds {sorted(state)}, model has {sorted(self.memories)}")
        device = next(self.parameters()).device
        for m, s in state.items():
            s = dict(s)
            s["y"] = [y.to(device) for y in s["y"]]
            s["labels"] = [lab.to(device) for lab in s["labels"]]
            self.memories[m].load_state_dict(s)
