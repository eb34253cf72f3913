"""NVML clock-throttle reason bits and their names (plain constants; importing this loads no NVML)."""

from __future__ import annotations

THROTTLE_IDLE = 0x1  # nvmlClocksThrottleReasonGpuIdle: nothing to do, not a slowdown
THROTTLE_APP_CLOCKS = 0x2  # nvmlClocksThrottleReasonApplicationsClocksSetting: a setting, not a slowdown
THROTTLE_NAMES = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def throttle_names(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_NAMES.items() if mask & bit] + (
        [f"0x{mask & ~sum(THROTTLE_NAMES):x}"] if mask & ~sum(THROTTLE_NAMES) else [])


# idle and an administrator's application-clock setting are not slowdowns of the work being measured
THROTTLE_BENIGN = THROTTLE_IDLE | THROTTLE_APP_CLOCKS
