"""WS-Discovery (SOAP over UDP, port 3702) for ONVIF recorders: a Probe for
a network video transmitter, or for anything, gets a ProbeMatch naming the
device service. One UDP socket, in the multicast group 239.255.255.250;
replies go to the prober alone. Never blocks the loop: the socket is
non-blocking and the task yields after each datagram; what is not a Probe
is ignored."""
import asyncio
import os
import socket
from micropython import const

from firmware import onvif, soap
from firmware.udpserve import answer_datagrams

PORT = const(3702)
GROUP = b'\xef\xff\xff\xfa'     # 239.255.255.250
_IPPROTO_IP = const(0)          # lwIP's numbers (the ESP32 port's socket module)
_IP_ADD_MEMBERSHIP = const(3)
_MAX_DATAGRAM = const(2048)     # a Probe is ~600 bytes; longer ones are cut and fail
_PROBE = b'http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe'
_TYPES = ('NetworkVideoTransmitter', 'Device')
_REPLY = ('<?xml version="1.0" encoding="UTF-8"?>\n<s:Envelope '
          'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
          'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
          'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
          'xmlns:dn="http://www.onvif.org/ver10/network/wsdl" '
          'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Header>'
          '<a:MessageID>urn:uuid:%s</a:MessageID><a:RelatesTo>%s</a:RelatesTo>'
          '<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>'
          '<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action>'
          '<d:AppSequence InstanceId="%d" MessageNumber="%d"/></s:Header><s:Body>'
          '<d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:%s'
          '</a:Address></a:EndpointReference><d:Types>dn:NetworkVideoTransmitter tds:Device'
          '</d:Types><d:Scopes>%s</d:Scopes><d:XAddrs>%s</d:XAddrs>'
          '<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches>'
          '</s:Body></s:Envelope>')


def wanted(probe):
    """Whether a Probe's Types ask for this board (none: anything). Scopes
    are not matched: every probe for the type is answered."""
    types = soap.text(probe, b'Types')
    if not types:
        return True
    for qname in types.split():
        if qname[qname.find(b':') + 1:].decode() in _TYPES:
            return True
    return False


class Discovery:
    """Owns the socket and its task: start(), stop()."""

    def __init__(self, endpoint_uuid, hostname, xaddr, port=PORT):
        self.uuid = endpoint_uuid
        self.scopes = soap.escape(' '.join(onvif.scopes(hostname)))
        self.xaddr = soap.escape(xaddr)
        self.port = port
        self.instance = int.from_bytes(os.urandom(3), 'big')   # AppSequence: per boot
        self.sent = 0
        self.sock = None
        self.task = None

    def reply(self, datagram):
        """The ProbeMatch (bytes) for one datagram, or None to ignore it."""
        if soap.text(datagram, b'Action') != _PROBE or soap.first_in_body(datagram) != 'Probe':
            return None
        message_id = soap.text(datagram, b'MessageID')
        if not message_id or len(message_id) > 100 or b'<' in message_id or not wanted(datagram):
            return None
        self.sent += 1
        from firmware.nvr import new_uuid
        try:
            relates = soap.escape(message_id.decode())
        except UnicodeError:
            return None
        return (_REPLY % (new_uuid(), relates, self.instance, self.sent, self.uuid,
                          self.scopes, self.xaddr)).encode()

    def start(self):
        """Open the socket (its own lwIP slot) and answer until stop()."""
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as exc:
            print('onvif: no discovery:', exc)
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(socket.getaddrinfo('0.0.0.0', self.port)[0][-1])
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            print('onvif: no discovery:', exc)
            return
        try:
            # any interface (0.0.0.0); without the group, probes sent straight here still work
            sock.setsockopt(_IPPROTO_IP, _IP_ADD_MEMBERSHIP, GROUP + b'\x00\x00\x00\x00')
        except OSError as exc:
            print('onvif: discovery hears no multicast:', exc)
        self.sock = sock
        self.task = asyncio.create_task(self._serve())
        print('onvif: discovery on udp %d' % self.port)

    async def _serve(self):
        await answer_datagrams(self.sock, _MAX_DATAGRAM, self.reply, 'onvif')

    def stop(self):
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
