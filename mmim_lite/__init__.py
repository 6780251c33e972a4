"""mmim-lite: MultiModal InfoMax (Han, Chen & Poria, EMNLP 2021), compact and tested.

Each concept has one module; import a name from the module that defines it. The modules, by
layer:

The paper's core

- ``config``: model and training settings, the paper's presets, Table 4 switches
- ``bounds``: the model's MI terms: entropies (Eqs. 5-8), history memory, BA (Eqs. 3-4), CPC
  (Eqs. 10-11)
- ``model``: MMIM itself: encoders (Eq. 2), fusion, q-predictors, CPC heads, the losses of Eq. 14
- ``train``: Algorithm 1 (stage 1, stage 2, selection, early stopping), in memory: no files

Data and evaluation

- ``text``: the text encoder by name, and its packed [CLS] forward
- ``data``: the released MOSI/MOSEI feature pickles read into ``Sample`` lists
- ``safepickle``: unpickling that cannot execute code; ``formats``: atomic file writes and the two
  released formats
- ``batching``: tokenised torch dataset and padded batches
- ``synth``: SynthMOSI, its Bayes-optimal oracle and the MI between its modalities
- ``metrics``: MAE, Corr, Acc-7, Acc-2, F1 as the MMSA tools define them; mean ± std; paired t-test

Experiment tooling

- ``experiment``: the multi-seed protocol, the data spec, a run into a folder with its summary (the
  Python API of ``mmim-lite train``)
- ``runtime``: run files (a Trainer callback), run-folder locks, checkpoints
- ``cli``: the ``mmim-lite`` command; ``sweep``: hyper-parameter search on Optuna (the paper's grid,
  workers sharing one study, retried failures)
- ``probes``: representation probes of a trained model (effective rank, speaker share, label R²)
- ``estimators``: the estimators the book compares the MI terms with: Gaussian MI, InfoNCE floor,
  NWJ, DV, CLUB
- ``plotting``: the book's figure style (one place for every chapter's figures)
"""

__version__ = "0.1.0"
