# The firmware's version: discovery (MQTT) reports it; tools/boardfiles.py reads it.
VERSION = '0.2.0'
