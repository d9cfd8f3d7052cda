"""Training groups: sampled negatives, teacher-score joins, missing-score handling, bad files."""

import pytest

from scaling.data import formats
from scaling.data.datamodule import TrainGroups
from scaling.data.formats import FormatError, read_scores


def test_groups_without_teacher_exclude_positives(small_beir):
    data = formats.load_beir(small_beir)
    groups = TrainGroups(data, "train", n_negatives=4, seed=0)
    for i in range(len(groups)):
        qid, docs, scores = groups[i]
        assert docs[0] in data.qrels["train"][qid] and scores is None
        assert len(set(docs)) == 5 and not set(docs[1:]) & set(data.qrels["train"][qid])
    assert groups[3] == groups[3]  # deterministic per (seed, epoch, index)
    assert groups[(0, 3)] == groups[3]  # a bare index is epoch 0
    assert any(groups[(1, i)][1] != groups[i][1] for i in range(len(groups)))  # each epoch draws anew


def test_teacher_scores_are_joined_by_id(small_beir, teacher_file):
    data = formats.load_beir(small_beir)
    teacher = read_scores(teacher_file)
    groups = TrainGroups(data, "train", n_negatives=3, teacher=teacher)
    for i in range(len(groups)):
        qid, docs, scores = groups[i]
        assert scores == [teacher[qid][d] for d in docs] and scores[0] >= 5


def test_missing_teacher_scores_fail_with_count_or_drop(small_beir, teacher_file, capsys):
    data = formats.load_beir(small_beir)
    teacher = read_scores(teacher_file)
    victims = sorted(teacher)[:2]
    for q in victims:
        del teacher[q]
    with pytest.raises(ValueError, match=r"2 of 60 training groups lack teacher scores.*missing_teacher=drop"):
        TrainGroups(data, "train", n_negatives=3, teacher=teacher)
    with pytest.raises(ValueError, match="scored negatives < 6"):
        TrainGroups(data, "train", n_negatives=6, teacher=teacher)
    kept = TrainGroups(data, "train", n_negatives=3, teacher=teacher, missing="drop")
    assert len(kept) == 58 and kept.dropped == 2 and "dropped 2 of 60" in capsys.readouterr().out


@pytest.mark.parametrize("text,line,field", [
    ("q1\td1\t0.5\nq1\td2\n", 2, "3 tab-separated"),
    ("q1\td1\tnan-ish\n", 1, "'score'"),
    ("q1\td1\t1\nq1\td1\t2\n", 2, "duplicate"),
])
def test_malformed_teacher_files_name_file_and_line(tmp_path, text, line, field):
    path = tmp_path / "t.tsv"
    path.write_text(text)
    with pytest.raises(FormatError) as e:
        read_scores(path)
    assert f"t.tsv:{line}:" in str(e.value) and field in str(e.value)


def test_data_fraction_draws_nested_subsets_independent_of_the_seed(small_beir):
    data = formats.load_beir(small_beir)
    full = TrainGroups(data, "train", 1, seed=0)
    quarter = TrainGroups(data, "train", 1, seed=0, fraction=0.25)
    half = TrainGroups(data, "train", 1, seed=5, fraction=0.5)
    ids = lambda groups: [item[0] for item in groups.items]  # noqa: E731
    assert len(ids(quarter)) == 15 and len(ids(half)) == 30 and len(ids(full)) == 60
    assert set(ids(quarter)) < set(ids(half)) < set(ids(full))  # smaller shares are subsets
    assert ids(half) == [q for q in ids(full) if q in set(ids(half))]  # original order kept
    assert ids(TrainGroups(data, "train", 1, seed=9, fraction=0.25)) == ids(quarter)


def test_a_checkpoint_of_the_older_position_resumes_at_the_same_place():
    """Checkpoints written before the trained-batch counter hold (epoch, batches in it)."""
    from scaling.data.resume import DataPosition, EpochSampler
    sampler = EpochSampler(10, 2)  # 5 batches an epoch
    DataPosition(sampler).load_state_dict({"epoch": 2, "batches": 1})
    assert sampler.trained == 11 and [k[0] for k in sampler] == [2] * 8  # the rest of epoch 2
