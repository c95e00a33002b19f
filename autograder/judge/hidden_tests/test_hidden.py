def test_check(report, check_id):
    result = next(r for r in report.results if r.check == check_id)
    assert result.passed, f"{result.score:g}/{result.points:g}: {result.message}"
