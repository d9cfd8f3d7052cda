#!/bin/bash
# The runs behind docs/sparse.md, one at a time (two CPU cores: never two at once).
# Every switch is spelled out, so a row does not depend on the current defaults.
set -e
R="python recipes/run.py eval.baselines=[] paradigm=sparse"
OLD="paradigm.head.skip_prefix=false paradigm.head.lexical=false paradigm.head.fold=false paradigm.head.doc_top_k=256 eval.rounding=floor"
BEST="paradigm.head.skip_prefix=true paradigm.head.lexical=true paradigm.head.fold=true paradigm.head.doc_top_k=null eval.rounding=round"
$R run_dir=runs/ablation/a_old64 $OLD paradigm.head.query_top_k=64
$R run_dir=runs/ablation/j_noprefix $BEST paradigm.head.skip_prefix=false
$R run_dir=runs/ablation/c_lexical $OLD paradigm.head.skip_prefix=true paradigm.head.lexical=true
$R run_dir=runs/ablation/lexfold $BEST
python recipes/evaluate.py checkpoint=runs/ablation/lexfold/checkpoint eval.rounding=floor eval.baselines=[] run_dir=runs/ablation/g_floor
$R run_dir=runs/ablation/e_noflops $BEST paradigm.terms.0.weight=0
$R run_dir=runs/ablation/f_bidir $BEST model.bidirectional=true
$R run_dir=runs/ablation/i_mntp $BEST model.bidirectional=true model.mntp.steps=300
$R run_dir=runs/ablation/d4_best $BEST budget.flops=4e13
$R run_dir=runs/ablation/st_splade size=splade-tiny paradigm.head.skip_sink=false paradigm.head.scale_logits=false $BEST
$R run_dir=runs/ablation/st_splade_full size=splade-tiny paradigm.head.skip_sink=false paradigm.head.skip_prefix=false \
   paradigm.head.lexical=false paradigm.head.fold=false paradigm.head.scale_logits=false paradigm.head.doc_top_k=null eval.rounding=round
python recipes/evaluate.py checkpoint=runs/ablation/lexfold/checkpoint "data.eval_splits=[dev]" "baseline=[bm25,splade]" run_dir=runs/ablation/dev_best
$R run_dir=runs/ablation/e4_noflops $BEST paradigm.terms.0.weight=0 budget.flops=4e13
$R run_dir=runs/ablation/k4_nofold $BEST paradigm.head.fold=false budget.flops=4e13
$R run_dir=runs/ablation/f4_bidir $BEST model.bidirectional=true budget.flops=4e13
$R run_dir=runs/ablation/j4_noprefix $BEST paradigm.head.skip_prefix=false budget.flops=4e13
$R run_dir=runs/ablation/i4_mntp $BEST model.bidirectional=true model.mntp.steps=300 budget.flops=4e13
