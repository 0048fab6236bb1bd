"""Tests of the recorded sources against the shipped data files."""

from __future__ import annotations

import gzip
import itertools
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from citymesh.data import data_dir
from citymesh.errors import ConfigError
from citymesh.gateway.sources import (
    SOURCE_NAMES,
    RecordedReading,
    RecordedSource,
    RecordingFormatError,
    local_to_utc_ms,
    open_source,
)


def utc_ms(text: str) -> int:
    """Return UTC ms of an ISO time written in UTC."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def by_device(readings: list[RecordedReading]) -> dict[str, list[RecordedReading]]:
    grouped: dict[str, list[RecordedReading]] = {}
    for reading in readings:
        grouped.setdefault(reading.device, []).append(reading)
    return grouped


@pytest.fixture(scope="module")
def occupancy() -> tuple[RecordedSource, list[RecordedReading]]:
    source = open_source("occupancy")
    return source, list(source.readings())


@pytest.fixture(scope="module")
def pedestrian() -> tuple[RecordedSource, list[RecordedReading]]:
    source = open_source("pedestrian")
    return source, list(source.readings())


@pytest.fixture(scope="module")
def traffic() -> tuple[RecordedSource, list[RecordedReading]]:
    source = open_source("traffic")
    return source, list(source.readings())


# --- data package ---------------------------------------------------------


def test_data_dir_contains_sets_with_source_notes() -> None:
    root = data_dir()
    for folder in ("occupancy_uci", "pedestrian_melbourne", "traffic_i94"):
        note = (root / folder / "SOURCE.md").read_text(encoding="utf-8")
        assert "CC BY 4.0" in note
    assert (root / "README.md").is_file()


def test_data_files_unchanged_sizes() -> None:
    root = data_dir()
    sizes = {
        "occupancy_uci/datatest.txt": 200_766,
        "occupancy_uci/datatest2.txt": 699_664,
        "occupancy_uci/datatraining.txt": 596_674,
        "pedestrian_melbourne/pedestrian_counts_nov2014.csv": 1_259_359,
        "pedestrian_melbourne/Pedestrian_sensor_locations.csv": 6_988,
        "traffic_i94/Metro_Interstate_Traffic_Volume.csv": 3_188_251,
    }
    for name, size in sizes.items():
        assert (root / name).stat().st_size == size, name


# --- catalogue and filters ------------------------------------------------


def test_open_source_unknown_name_raises() -> None:
    with pytest.raises(ConfigError, match="known sources: occupancy, pedestrian"):
        open_source("weather")


def test_open_source_unknown_device_raises() -> None:
    with pytest.raises(ConfigError, match="no device room-9"):
        open_source("occupancy", devices=["room-9"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"offset": -1}, "offset"),
        ({"limit": -5}, "limit"),
        ({"start_ms": 2_000, "end_ms": 1_000}, "not after"),
    ],
)
def test_open_source_invalid_slice_raises(
    arguments: dict[str, int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        open_source("traffic", **arguments)  # type: ignore[arg-type]


def test_source_names_listed() -> None:
    assert SOURCE_NAMES == ("occupancy", "pedestrian", "traffic")


def test_filter_devices_offset_limit() -> None:
    source = open_source("occupancy", devices=["room-3"], offset=1, limit=2)
    readings = list(source.readings())

    assert [d.device for d in source.devices] == ["room-3"]
    assert len(readings) == 12
    assert {r.device for r in readings} == {"room-3"}
    # Row 2 of datatest2.txt: 2015-02-11 14:49:00 Brussels, 21.79 °C.
    assert readings[0].timestamp_ms == utc_ms("2015-02-11 13:49:00")
    assert readings[0].quantity == "temperature"
    assert readings[0].value == 21.79
    assert readings[-1].timestamp_ms == utc_ms("2015-02-11 13:50:00")
    assert source.stats.rows_emitted == 2


def test_filter_time_window() -> None:
    source = open_source(
        "traffic",
        start_ms=utc_ms("2012-10-02 15:00:00"),
        end_ms=utc_ms("2012-10-02 18:00:00"),
    )
    readings = list(source.readings())

    # 10:00, 11:00 and 12:00 CDT from the file: 4516, 4767, 5026 vehicles.
    assert [r.timestamp_ms for r in readings] == [
        utc_ms("2012-10-02 15:00:00"),
        utc_ms("2012-10-02 16:00:00"),
        utc_ms("2012-10-02 17:00:00"),
    ]
    assert [r.value for r in readings] == [4516.0, 4767.0, 5026.0]


def test_filter_limit_zero_yields_nothing() -> None:
    source = open_source("traffic", limit=0)
    assert list(source.readings()) == []


def test_readings_restart_on_each_pass() -> None:
    source = open_source("pedestrian", devices=["ped-22"], limit=3)
    first = list(source.readings())
    second = list(source.readings())
    assert first == second
    assert len(first) == 3


# --- occupancy ------------------------------------------------------------


def test_occupancy_row_counts(
    occupancy: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    source, readings = occupancy
    grouped = by_device(readings)

    assert len(grouped["room-1"]) == 2_665 * 6
    assert len(grouped["room-2"]) == 8_143 * 6
    assert len(grouped["room-3"]) == 9_752 * 6
    assert source.stats.rows_read == 20_560
    assert source.stats.duplicates == 0
    assert source.stats.out_of_order == 0


def test_occupancy_first_row_converted_to_utc(
    occupancy: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    _, readings = occupancy
    first_row = readings[:6]
    # "140","2015-02-02 14:19:00",23.7,26.272,585.2,749.2,0.00476416302416414,1
    # Brussels is UTC+1 in February.
    expected_ms = utc_ms("2015-02-02 13:19:00")
    assert [r.quantity for r in first_row] == [
        "temperature",
        "humidity",
        "light",
        "co2",
        "humidity_ratio",
        "occupancy",
    ]
    assert [r.value for r in first_row] == [
        23.7,
        26.272,
        585.2,
        749.2,
        0.00476416302416414,
        1.0,
    ]
    assert {r.timestamp_ms for r in first_row} == {expected_ms}
    assert {r.device for r in first_row} == {"room-1"}


def test_occupancy_seconds_59_rounded_to_minute(
    occupancy: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    _, readings = occupancy
    # Row 2 of datatest.txt is stamped 14:19:59 local.
    second_row = readings[6]
    assert second_row.timestamp_ms == utc_ms("2015-02-02 13:20:00")
    assert second_row.value == 23.718


def test_occupancy_rows_on_minute_grid(
    occupancy: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    _, readings = occupancy
    for device, device_readings in by_device(readings).items():
        times = sorted({r.timestamp_ms for r in device_readings})
        steps = {later - earlier for earlier, later in itertools.pairwise(times)}
        assert steps == {60_000}, device


def test_occupancy_last_rows(
    occupancy: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    _, readings = occupancy
    grouped = by_device(readings)

    # datatest.txt ends "2015-02-04 10:43:00",24.4083333333333,...
    room_1_last = grouped["room-1"][-6]
    assert room_1_last.timestamp_ms == utc_ms("2015-02-04 09:43:00")
    assert room_1_last.value == 24.4083333333333
    # datatraining.txt ends 2015-02-10 09:33:00 with CO2 821.
    room_2_co2 = grouped["room-2"][-3]
    assert room_2_co2.quantity == "co2"
    assert room_2_co2.timestamp_ms == utc_ms("2015-02-10 08:33:00")
    assert room_2_co2.value == 821.0
    # datatest2.txt (unquoted dates) ends 2015-02-18 09:19:00 with CO2 1864.
    room_3_co2 = grouped["room-3"][-3]
    assert room_3_co2.timestamp_ms == utc_ms("2015-02-18 08:19:00")
    assert room_3_co2.value == 1864.0


def test_occupancy_devices_described(
    occupancy: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    source, _ = occupancy
    assert [d.device for d in source.devices] == ["room-1", "room-2", "room-3"]
    assert "2015-02-02 to 2015-02-04" in source.devices[0].name
    assert "2015-02-11 to 2015-02-18" in source.devices[2].name
    for device in source.devices:
        assert "UMONS" in device.name
        assert [s.step_s for s in device.sensors] == [60] * 6
    assert source.step_s == 60


def test_occupancy_readings_in_time_order(
    occupancy: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    _, readings = occupancy
    times = [r.timestamp_ms for r in readings]
    assert times == sorted(times)


# --- pedestrian -----------------------------------------------------------


def test_pedestrian_counts_and_devices(
    pedestrian: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    source, readings = pedestrian
    assert len(readings) == 24_492
    assert source.stats.duplicates == 0
    assert len(source.devices) == 33
    assert len(by_device(readings)["ped-1"]) == 400
    for device in source.devices:
        assert device.sensors[0].quantity == "pedestrians"
        assert device.sensors[0].step_s == 3600


def test_pedestrian_sorted_across_file_order(
    pedestrian: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    _, readings = pedestrian
    times = [r.timestamp_ms for r in readings]
    assert times == sorted(times)
    # The file starts with 01-Nov-2014 22:00, but 30-Oct-2014 07:00 rows
    # follow it. Melbourne is UTC+11 (daylight time) then. Sensor 29 counted
    # 372 pedestrians, the lowest sensor id of that hour.
    first = readings[0]
    assert first.timestamp_ms == utc_ms("2014-10-29 20:00:00")
    assert first.device == "ped-29"
    assert first.value == 372.0
    last = readings[-1]
    assert last.timestamp_ms == utc_ms("2014-11-30 12:00:00")
    assert last.device == "ped-39"
    assert last.value == 25.0


def test_pedestrian_specific_row_start_of_hour(
    pedestrian: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    _, readings = pedestrian
    # File line 2: 01-Nov-2014,Saturday,22,32,City Square,769
    matches = [
        r
        for r in readings
        if r.device == "ped-32" and r.timestamp_ms == utc_ms("2014-11-01 11:00:00")
    ]
    assert [r.value for r in matches] == [769.0]


def test_pedestrian_location_from_locations_file(
    pedestrian: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    source, _ = pedestrian
    devices = {d.device: d for d in source.devices}
    # Locations file: 22,Eli274_T,Flinders St-Elizabeth St (East),...,
    # -37.8178644478193,144.965068228214
    sensor_22 = devices["ped-22"]
    assert sensor_22.latitude == -37.8178644478193
    assert sensor_22.longitude == 144.965068228214
    assert "Flinders St-Elizabeth St (East)" in sensor_22.name
    assert devices["ped-39"].latitude == -37.8138475498556
    assert "ped-7" not in devices


PEDESTRIAN_HEADER = "Date,Day_of_week,Hour,SensorID,SensorName,PedestrianCount\n"
LOCATIONS_HEADER = (
    "Sensor ID,Sensor Name,Sensor Description,Status,Upload Date,"
    "Year Installed,Location Type,Geometry,Latitude,Longitude\n"
)


def write_pedestrian_set(root: Path, rows: list[str]) -> None:
    folder = root / "pedestrian_melbourne"
    folder.mkdir(parents=True)
    (folder / "pedestrian_counts_nov2014.csv").write_text(
        PEDESTRIAN_HEADER + "".join(rows), encoding="utf-8"
    )
    (folder / "Pedestrian_sensor_locations.csv").write_text(
        LOCATIONS_HEADER
        + '5,A_T,Street A,Installed,x,2010,Outdoor,"(-37.1, 144.1)",-37.1,144.1\n',
        encoding="utf-8",
    )


def test_pedestrian_duplicates_keep_first(tmp_path: Path) -> None:
    write_pedestrian_set(
        tmp_path,
        [
            "02-Nov-2014,Sunday,10,5,Street A,100\n",
            "01-Nov-2014,Saturday,9,5,Street A,50\n",
            "02-Nov-2014,Sunday,10,5,Street A,999\n",
            "02-Nov-2014,Sunday,10,6,Street B,7\n",
        ],
    )
    source = open_source("pedestrian", data_dir=tmp_path)
    readings = list(source.readings())

    assert [(r.device, r.value) for r in readings] == [
        ("ped-5", 50.0),
        ("ped-5", 100.0),
        ("ped-6", 7.0),
    ]
    assert source.stats.duplicates == 1
    assert source.stats.rows_read == 4
    devices = {d.device: d for d in source.devices}
    assert devices["ped-6"].latitude is None
    assert devices["ped-5"].longitude == 144.1


def test_pedestrian_bad_month_raises(tmp_path: Path) -> None:
    write_pedestrian_set(tmp_path, ["02-Foo-2014,Sunday,10,5,Street A,100\n"])
    with pytest.raises(RecordingFormatError, match=r"pedestrian_counts_nov2014.csv:2"):
        open_source("pedestrian", data_dir=tmp_path)


# --- traffic --------------------------------------------------------------


def test_traffic_duplicate_hours_kept_once(
    traffic: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    source, readings = traffic
    assert source.stats.rows_read == 48_204
    assert len(readings) == 40_575
    assert source.stats.duplicates == 48_204 - 40_575
    assert source.stats.out_of_order == 0
    times = [r.timestamp_ms for r in readings]
    assert len(set(times)) == len(times)
    assert times == sorted(times)


def test_traffic_first_and_last_rows(
    traffic: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    source, readings = traffic
    # 2012-10-02 09:00:00 CDT (UTC-5), 5545 vehicles.
    assert readings[0] == RecordedReading(
        "i94-atr301", "vehicles", utc_ms("2012-10-02 14:00:00"), 5545.0
    )
    # 2018-09-30 23:00:00 CDT, 954 vehicles.
    assert readings[-1] == RecordedReading(
        "i94-atr301", "vehicles", utc_ms("2018-10-01 04:00:00"), 954.0
    )
    assert [d.device for d in source.devices] == ["i94-atr301"]
    assert source.step_s == 3600


def test_traffic_daylight_saving_edges(
    traffic: tuple[RecordedSource, list[RecordedReading]],
) -> None:
    _, readings = traffic
    by_time = {r.timestamp_ms: r.value for r in readings}
    # 2012-11-04: 01:00 local occurs twice (two identical rows, 730). It is
    # read as daylight time, then 02:00 is standard time (UTC-6).
    assert by_time[utc_ms("2012-11-04 05:00:00")] == 2125.0
    assert by_time[utc_ms("2012-11-04 06:00:00")] == 730.0
    assert utc_ms("2012-11-04 07:00:00") not in by_time
    assert by_time[utc_ms("2012-11-04 08:00:00")] == 345.0
    # 2013-03-10: the file skips 02:00, so 00:00 CST is followed by 03:00 CDT.
    assert by_time[utc_ms("2013-03-10 06:00:00")] == 1087.0
    assert by_time[utc_ms("2013-03-10 08:00:00")] == 387.0


TRAFFIC_HEADER = (
    "holiday,temp,rain_1h,snow_1h,clouds_all,weather_main,"
    "weather_description,date_time,traffic_volume\n"
)


def write_traffic_set(root: Path, rows: list[str]) -> Path:
    folder = root / "traffic_i94"
    folder.mkdir(parents=True)
    path = folder / "Metro_Interstate_Traffic_Volume.csv"
    path.write_text(TRAFFIC_HEADER + "".join(rows), encoding="utf-8")
    return path


def test_traffic_nonexistent_local_time_no_crash(tmp_path: Path) -> None:
    write_traffic_set(
        tmp_path,
        [
            "None,270,0,0,1,Clear,sky,2013-03-10 01:00:00,100\n",
            "None,270,0,0,1,Clear,sky,2013-03-10 02:00:00,200\n",
            "None,270,0,0,1,Clear,sky,2013-03-10 03:00:00,300\n",
            "None,270,0,0,1,Clear,sky,2013-03-10 04:00:00,400\n",
        ],
    )
    source = open_source("traffic", data_dir=tmp_path)
    readings = list(source.readings())

    # 02:00 does not exist and is read with the standard-time offset, which
    # makes it 08:00 UTC like 03:00 CDT, so the later 03:00 row is dropped.
    assert [(r.timestamp_ms, r.value) for r in readings] == [
        (utc_ms("2013-03-10 07:00:00"), 100.0),
        (utc_ms("2013-03-10 08:00:00"), 200.0),
        (utc_ms("2013-03-10 09:00:00"), 400.0),
    ]
    assert source.stats.duplicates == 1


def test_traffic_out_of_order_row_dropped(tmp_path: Path) -> None:
    write_traffic_set(
        tmp_path,
        [
            "None,270,0,0,1,Clear,sky,2016-05-01 10:00:00,100\n",
            "None,270,0,0,1,Clear,sky,2016-05-01 08:00:00,200\n",
            "None,270,0,0,1,Clear,sky,2016-05-01 11:00:00,300\n",
        ],
    )
    source = open_source("traffic", data_dir=tmp_path)
    values = [r.value for r in source.readings()]

    assert values == [100.0, 300.0]
    assert source.stats.out_of_order == 1


def test_traffic_bad_volume_names_line(tmp_path: Path) -> None:
    write_traffic_set(
        tmp_path,
        [
            "None,270,0,0,1,Clear,sky,2016-05-01 10:00:00,100\n",
            "None,270,0,0,1,Clear,sky,2016-05-01 11:00:00,lots\n",
        ],
    )
    source = open_source("traffic", data_dir=tmp_path)
    with pytest.raises(RecordingFormatError) as caught:
        list(source.readings())
    assert caught.value.line == 3
    assert caught.value.path.name == "Metro_Interstate_Traffic_Volume.csv"


def test_traffic_reads_gzip_copy(tmp_path: Path) -> None:
    folder = tmp_path / "traffic_i94"
    folder.mkdir()
    original = data_dir() / "traffic_i94" / "Metro_Interstate_Traffic_Volume.csv"
    with (
        original.open("rb") as plain,
        gzip.open(folder / "Metro_Interstate_Traffic_Volume.csv.gz", "wb") as packed,
    ):
        shutil.copyfileobj(plain, packed)

    packed_source = open_source("traffic", data_dir=tmp_path, limit=50)
    plain_source = open_source("traffic", limit=50)
    assert list(packed_source.readings()) == list(plain_source.readings())


def test_missing_data_file_raises(tmp_path: Path) -> None:
    source = open_source("traffic", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="Metro_Interstate_Traffic_Volume"):
        list(source.readings())


# --- occupancy format checks ----------------------------------------------


def test_occupancy_bad_header_raises(tmp_path: Path) -> None:
    folder = tmp_path / "occupancy_uci"
    folder.mkdir()
    (folder / "datatest.txt").write_text('"date","Temperature"\n', encoding="utf-8")
    source = open_source("occupancy", devices=["room-1"], data_dir=tmp_path)
    with pytest.raises(RecordingFormatError, match="unexpected header"):
        list(source.readings())


def test_occupancy_missing_row_number_raises(tmp_path: Path) -> None:
    folder = tmp_path / "occupancy_uci"
    folder.mkdir()
    header = (
        '"date","Temperature","Humidity","Light","CO2","HumidityRatio","Occupancy"\n'
    )
    row = '"2015-02-02 14:19:00",23.7,26.272,585.2,749.2,0.0047,1\n'
    (folder / "datatest.txt").write_text(header + row, encoding="utf-8")
    source = open_source("occupancy", devices=["room-1"], data_dir=tmp_path)
    with pytest.raises(RecordingFormatError, match="expected 8 fields, got 7"):
        list(source.readings())


# --- local time conversion ------------------------------------------------


def test_local_to_utc_ambiguous_takes_first() -> None:
    zone = ZoneInfo("America/Chicago")
    converted = local_to_utc_ms(datetime(2016, 11, 6, 1, 30), zone)
    assert converted == utc_ms("2016-11-06 06:30:00")


def test_local_to_utc_nonexistent_shifts_forward() -> None:
    zone = ZoneInfo("Australia/Melbourne")
    # Melbourne clocks went from 02:00 to 03:00 on 2014-10-05. 02:30 is read
    # with the standard offset (UTC+10), which is 03:30 daylight time.
    converted = local_to_utc_ms(datetime(2014, 10, 5, 2, 30), zone)
    assert converted == utc_ms("2014-10-04 16:30:00")
