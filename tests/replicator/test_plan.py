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


def test_padding_rows_are_zero_and_weightless():
    layout = plan.make_plan(tf.constant(3), 5)
    parts = plan.split(tf.ones((3, 2)), layout, 5)
    assert [float(tf.reduce_sum(p)) for p in parts] == [2.0, 2.0, 2.0, 0.0, 0.0]
    np.testing.assert_allclose(layout.weights.numpy(), [1 / 3] * 3 + [0, 0])


def test_scalar_parts_merge_to_the_batch_weighted_mean():
    layout = plan.make_plan(tf.constant(10), 3)  # sizes 4, 3, 3
    merged = plan.merge([tf.constant(1.0), tf.constant(2.0), tf.constant(4.0)], layout)
    assert float(merged) == pytest.approx((4 * 1 + 3 * 2 + 3 * 4) / 10)


def test_none_inputs_reach_every_replica_and_scalars_are_refused():
    layout = plan.make_plan(tf.constant(4), 2)
    assert plan.split(None, layout, 2) == [None, None]
    with pytest.raises(ValueError, match="batch axis"):
        plan.split(tf.constant(1.0), layout, 2)
    with pytest.raises(ValueError, match="no input tensor"):
        plan.batch_size_of([None])
