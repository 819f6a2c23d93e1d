# Board start-up: config, Wi-Fi, hostname, SD card. main.py starts the app.
from firmware import startup

startup.run()
