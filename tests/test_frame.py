import io
import zlib

import pytest

from fero.log import frame


def test_round_trip_and_positions():
    bodies = [b"", b"a", b"x" * 1000]
    buf = b"".join(frame.encode(b) for b in bodies)
    got = list(frame.scan(buf))
    assert [b for _, b in got] == bodies
    assert [p for p, _ in got] == [0, 8, 17]


@pytest.mark.parametrize(
    "mutate, why",
    [
        (lambda b: b[:-1], "cut short"),
        (lambda b: b[:5], "header cut short"),
        (lambda b: b[:8] + bytes([b[8] ^ 1]) + b[9:], "CRC mismatch"),
        (lambda b: (2**31).to_bytes(4, "big") + b[4:], "implausible"),
    ],
)
def test_damage_is_detected(mutate, why):
    good = frame.encode(b"hello world")
    with pytest.raises(frame.Corrupt) as err:
        frame.decode_at(mutate(good), 0)
    assert why in str(err.value)
    assert err.value.position == 0
    with pytest.raises(frame.Corrupt) as err:  # the same, read from a file
        frame.read(io.BytesIO(mutate(good)), 0)
    assert why in str(err.value)


def test_read_takes_one_frame_at_a_time_then_none_at_the_end():
    bodies = [b"", b"a", b"x" * 1000]
    f = io.BytesIO(b"".join(frame.encode(b) for b in bodies))
    assert [frame.read(f, f.tell()) for _ in bodies] == bodies
    assert frame.read(f, f.tell()) is None


def test_scan_stops_at_first_bad_frame_and_reports_its_position():
    a, b = frame.encode(b"first"), frame.encode(b"second")
    buf = a + b[:-2]
    it = frame.scan(buf)
    assert next(it) == (0, b"first")
    with pytest.raises(frame.Corrupt) as err:
        next(it)
    assert err.value.position == len(a)


def test_crc_is_over_the_body():
    body = b"payload"
    length, crc = frame.HEADER.unpack(frame.encode(body)[:8])
    assert (length, crc) == (len(body), zlib.crc32(body))
