"""gurux-dlms as an outside oracle of the simulator's configuration objects: gurux's own
limiter (class 71) and special days (class 11) objects write, our simulator keeps, gurux
reads back what it wrote."""

from gurux_dlms import GXDate
from gurux_dlms.enums import Authentication, DataType
from gurux_dlms.objects import GXDLMSLimiter, GXDLMSSpecialDay, GXDLMSSpecialDaysTable

from collection.simulators.dlms_fleet import DlmsFleet, make_meters

from .conftest import NOW
from .gurux_helper import GuruxSession


def test_gurux_writes_and_reads_back_the_limiter_and_special_days():
    meters = make_meters(1)
    fleet = DlmsFleet(meters, now=lambda: NOW, interface="wrapper")
    with fleet.running_in_thread():
        host, port, sa = fleet.address_of(meters[0].serial)
        s = GuruxSession(
            host, port, server=sa, client=17, auth=Authentication.LOW, password=b"12345678"
        )
        s.open()
        try:
            lim = GXDLMSLimiter("0.0.17.0.0.255")
            s.read(lim, 2)
            assert lim.monitoredAttributeIndex == 2
            lim.thresholdNormal = 4200
            lim.minOverThresholdDuration = 90
            lim.setDataType(4, DataType.INT32)  # the monitored value's type (double-long)
            for attribute in (4, 6):
                assert s.write(lim, attribute).error == 0
            state = fleet.state_of(meters[0].serial).limiter
            assert (state.normal, state.min_over_s) == (4200, 90)
            fresh = GXDLMSLimiter("0.0.17.0.0.255")
            for attribute in (3, 4, 6, 7):
                s.read(fresh, attribute)
            assert fresh.thresholdNormal == 4200 and fresh.thresholdActive == 4200
            assert (fresh.minOverThresholdDuration, fresh.minUnderThresholdDuration) == (90, 0)

            table = GXDLMSSpecialDaysTable("0.0.11.0.0.255")
            day = GXDLMSSpecialDay()
            day.index, day.dayId = 1, 2
            day.date = GXDate(NOW)
            table.entries = [day]
            assert s.write(table, 2).error == 0
            back = GXDLMSSpecialDaysTable("0.0.11.0.0.255")
            s.read(back, 2)
            assert [(e.index, e.dayId) for e in back.entries] == [(1, 2)]
            assert fleet.state_of(meters[0].serial).special_days[1][1] == 2
        finally:
            s.close()
