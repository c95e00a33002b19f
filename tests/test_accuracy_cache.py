"""The shared accuracy cache: content-addressed, written atomically, read defensively, safe under racing writers."""
import json
import multiprocessing
import time

from autograder.judge.accuracy_cache import AccuracyCache, digest, key

ARCH = {"features": [["Conv2d", 1, 32, 3, 1]], "classifier": [["Linear", 128, 10]]}


def test_get_returns_what_put_stored_and_misses_otherwise(tmp_path):
    cache = AccuracyCache.of_course(tmp_path)
    k = key(ARCH, "cpu", "2.3.0")
    assert cache.get(k) is None
    assert cache.put(k, {"accuracy": 97.5}) is True
    assert cache.get(k) == {"accuracy": 97.5}
    assert cache.path(k) == tmp_path / "accuracy-cache" / f"{digest(k)}.json"
    assert cache.get(key(ARCH, "gpu", "2.3.0")) is None, "another profile is another entry"
    assert cache.get(key(ARCH, "cpu", "2.4.0")) is None, "another torch version is another entry"
    assert cache.put(k, {"accuracy": 1.0}) is False, "an entry is never overwritten"
    assert cache.get(k) == {"accuracy": 97.5}


def test_corrupt_or_foreign_entries_are_misses_and_get_replaced(tmp_path):
    cache = AccuracyCache(tmp_path)
    k = key(ARCH, "cpu", "2.3.0")
    tmp_path.mkdir(exist_ok=True)
    for junk in (b"", b"{not json", b"\xff\xfe", b"[]", json.dumps({"key": "other", "report": {}}).encode()):
        cache.path(k).write_bytes(junk)
        assert cache.get(k) is None, junk
    assert cache.put(k, {"accuracy": 98.0}) is True
    assert cache.get(k) == {"accuracy": 98.0}


def _race(folder, start, index, results):
    cache = AccuracyCache(folder)
    start.wait()
    for round_ in range(30):
        k = key({**ARCH, "round": round_}, "cpu", "2.3.0")
        stored = cache.put(k, {"accuracy": 90.0 + round_, "writer": index})
        seen = cache.get(k)
        results.put((index, round_, stored, seen))


def test_concurrent_writers_never_corrupt_an_entry(tmp_path):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(6), context.Queue()
    workers = [context.Process(target=_race, args=(tmp_path, start, i, results)) for i in range(6)]
    for worker in workers:
        worker.start()
    seen = [results.get(timeout=120) for _ in range(6 * 30)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    for round_ in range(30):
        rows = [row for row in seen if row[1] == round_]
        assert sum(stored for _, _, stored, _ in rows) == 1, f"round {round_}: exactly one writer wins"
        winners = {json.dumps(s, sort_keys=True) for _, _, _, s in rows}
        assert len(winners) == 1 and json.loads(winners.pop())["accuracy"] == 90.0 + round_, rows
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json"] * 30, "no temporary files left behind"


def _train_once(folder, start, index, trained_log):
    cache, k = AccuracyCache(folder), key([["Conv2d", 1, 32]], "cpu", "2.x")
    start.wait()
    with cache.training(k) as held:
        assert held
        if cache.get(k) is None:  # what judge_accuracy does: look again under the lock, train on a miss
            with open(trained_log, "a") as log:
                log.write(f"{index}\n")
            time.sleep(0.5)  # a training: the others arrive meanwhile
            cache.put(k, {"accuracy": 99.0, "trainer": index})


def test_concurrent_workers_train_an_architecture_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    start, trained_log = context.Barrier(4), tmp_path / "trained.log"
    workers = [context.Process(target=_train_once, args=(tmp_path / "cache", start, i, trained_log))
               for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    trainers = trained_log.read_text().split()
    assert len(trainers) == 1, f"trained by {trainers}"
    stored = AccuracyCache(tmp_path / "cache").get(key([["Conv2d", 1, 32]], "cpu", "2.x"))
    assert stored == {"accuracy": 99.0, "trainer": int(trainers[0])}


def test_a_stuck_trainer_does_not_stall_the_others(tmp_path):
    cache, k = AccuracyCache(tmp_path), key([["Linear", 10]], "cpu", "2.x")
    with cache.training(k) as held:
        assert held
        started = time.monotonic()
        with AccuracyCache(tmp_path).training(k, wait_seconds=0.5, poll=0.05) as other:
            assert other is False  # it gave up waiting: its caller trains on its own
        assert 0.4 < time.monotonic() - started < 5
    with cache.training(k, wait_seconds=0) as again:
        assert again  # released with its holder


def test_a_cache_folder_that_cannot_be_made_gives_no_lock_and_no_error(tmp_path):
    (tmp_path / "not-a-folder").write_text("a file where the cache folder should be")
    cache = AccuracyCache(tmp_path / "not-a-folder" / "accuracy-cache")
    k = key([["Linear", 10]], "cpu", "2.x")
    with cache.training(k) as held:
        assert held is False  # the caller trains without the lock
    assert cache.put(k, {"accuracy": 99.0}) is False
    assert cache.get(k) is None
