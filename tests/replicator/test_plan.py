import numpy as np
import pytest
import tensorflow as tf

from nbreplica.replicator import plan


@pytest.mark.parametrize("devices", range(1, 9))
@pytest.mark.parametrize("rows", [0, 1, 2, 3, 7, 8, 9, 13, 64])
def test_split_is_even_never_empty_and_merges_back(rows, devices):
    x = tf.reshape(tf.range(rows * 2, dtype=tf.float32), (rows, 2))
    layout = plan.make_plan(tf.constant(rows), devices)
    parts = plan.split(x, layout, devices)

    sizes = [int(p.shape[0]) for p in parts]
    assert len(parts) == devices
    assert min(sizes) >= 1, "no replica may receive an empty sub-batch"
    assert max(sizes) - min(sizes) <= 1, "no replica gets more than one extra row"
    assert sum(sizes) == max(rows, devices)
    np.testing.assert_array_equal(plan.merge(parts, layout).numpy(), x.numpy())
    assert np.isclose(float(tf.reduce_sum(layout.weights)), 1.0 if rows else 0.0)


def test_padding_rows_copy_the_last_row_and_are_weightless():
    layout = plan.make_plan(tf.constant(3), 5)
    parts = plan.split(tf.constant([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]), layout, 5)
    assert [p.numpy().tolist() for p in parts] == [[[1, 1]], [[2, 2]], [[3, 3]], [[3, 3]],
                                                   [[3, 3]]]
    np.testing.assert_allclose(layout.weights.numpy(), [1 / 3] * 3 + [0, 0])
    np.testing.assert_array_equal(layout.real_rows.numpy(), [1, 1, 1, 0, 0])


def test_gradient_seeds_of_padding_rows_are_zero():
    layout = plan.make_plan(tf.constant(3), 5)
    seeds = plan.split_gradient(tf.constant([[1.0], [2.0], [3.0]]), layout, 5)
    assert [s.numpy().tolist() for s in seeds] == [[[1]], [[2]], [[3]], [[0]], [[0]]]


def test_strings_ragged_and_sparse_inputs_split_by_rows_and_pad_with_real_rows():
    layout = plan.make_plan(tf.constant(2), 4)
    strings = plan.split(tf.constant(["a b", "c"]), layout, 4)
    assert [s.numpy().tolist() for s in strings] == [[b"a b"], [b"c"], [b"c"], [b"c"]]

    ragged = tf.ragged.constant([[1, 2, 3], [4], [5, 6], [7]])
    parts = plan.split(ragged, plan.make_plan(tf.constant(4), 3), 3)
    assert [p.to_list() for p in parts] == [[[1, 2, 3], [4]], [[5, 6]], [[7]]]
    assert plan.merge(parts, plan.make_plan(tf.constant(4), 3)).to_list() == ragged.to_list()

    sparse = tf.sparse.from_dense(tf.constant([[0, 1], [2, 0], [0, 0]]))
    parts = plan.split(sparse, plan.make_plan(tf.constant(3), 4), 4)
    assert [tf.sparse.to_dense(p).numpy().tolist() for p in parts] == [
        [[0, 1]], [[2, 0]], [[0, 0]], [[0, 0]]]


def test_scalar_parts_merge_to_the_batch_weighted_mean():
    layout = plan.make_plan(tf.constant(10), 3)  # sizes 4, 3, 3
    merged = plan.merge([tf.constant(1.0), tf.constant(2.0), tf.constant(4.0)], layout)
    assert float(merged) == pytest.approx((4 * 1 + 3 * 2 + 3 * 4) / 10)


def test_none_inputs_reach_every_replica_scalars_are_refused_and_no_input_has_no_batch():
    layout = plan.make_plan(tf.constant(4), 2)
    assert plan.split(None, layout, 2) == [None, None]
    with pytest.raises(ValueError, match="batch axis"):
        plan.split(tf.constant(1.0), layout, 2)
    assert plan.batch_size_of([None]) is None
