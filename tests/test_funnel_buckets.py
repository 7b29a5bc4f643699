"""The gap buckets and their fine buckets (funnel_spec): every fine bucket lies inside its bucket."""

from app.services.funnel_spec import (
    FINE_BOUNDS_US,
    GAP_BOUNDS_US,
    LAST_BUCKET,
    LAST_FINE,
    fine_bucket,
    fine_buckets_of,
    fine_gap_bounds,
    gap_bucket,
)


def test_each_bucket_is_its_eight_fine_buckets():
    covered = []
    for bucket in range(LAST_BUCKET + 1):
        fines = fine_buckets_of(bucket)
        covered += list(fines)
        assert len(fines) == (1 if bucket == 0 else 8)
        # The bucket's lower bound is its first fine bucket's, and every fine bucket's gaps fall in the bucket.
        assert fine_gap_bounds(fines[0])[0] == GAP_BOUNDS_US[bucket]
        for fine in fines:
            low, high = fine_gap_bounds(fine)
            assert gap_bucket(low) == bucket and fine_bucket(low) == fine
            if high is not None:
                assert gap_bucket(high - 1) == bucket and fine_bucket(high - 1) == fine
    assert covered == list(range(LAST_FINE + 1))


def test_fine_bounds_by_hand():
    # 1 s opens fine bucket 1; 2^(1/64) s = 1.010889 s opens 2; 2 s opens 65 (bucket 9 = 2 s .. 2^(9/8) s).
    assert FINE_BOUNDS_US[:3] == [0, 1_000_000, 1_010_889]
    assert fine_bucket(999_999) == 0 and fine_bucket(1_000_000) == 1 and fine_bucket(1_010_889) == 2
    assert fine_bucket(2_000_000) == 65 and gap_bucket(2_000_000) == 9
    assert fine_bucket(10**15) == LAST_FINE and fine_gap_bounds(LAST_FINE)[1] is None
