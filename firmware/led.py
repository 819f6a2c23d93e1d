"""The flash LED on GPIO4, dimmed with PWM. Created on first use."""


class FlashLed:
    def __init__(self, pin_number):
        self.pin_number = pin_number
        self.pwm = None

    def set(self, level):
        """Set brightness 0..255; the pin is claimed on the first call."""
        if self.pwm is None:
            import machine
            self.pwm = machine.PWM(machine.Pin(self.pin_number), freq=5000, duty=0)
        self.pwm.duty(level * 1023 // 255)

    def apply(self, name, value):
        """The settings table's applier for the flash LED."""
        self.set(value)
