"""ONVIF Profile S, the part recorders use: the device and media services
as small templated SOAP replies (firmware/soap.py; no XML library).

One profile: the camera's JPEG stream over RTSP (firmware/rtsp.py), and
its snapshot at /snapshot.jpg. Every action but GetSystemDateAndTime (which
clients need to sync their clocks first) needs the recorder's WS-Security
UsernameToken (firmware/nvr.py); a wrong one counts toward the per-address
lockout. Nothing here changes the board.
"""
import time

from firmware import VERSION, soap
from firmware.guard import client_address

DEVICE_PATH = '/onvif/device_service'
MEDIA_PATH = '/onvif/media_service'
MAX_BODY = 8192                 # a request with a UsernameToken is ~1.5 KB
CONTENT_TYPE = 'application/soap+xml; charset=utf-8'
_NS = ('xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
       'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
       'xmlns:tt="http://www.onvif.org/ver10/schema"')
_DEVICE_NS = 'http://www.onvif.org/ver10/device/wsdl'
_MEDIA_NS = 'http://www.onvif.org/ver10/media/wsdl'
PROFILE = 'profile0'
# esp32-camera's frame sizes by the names the settings use
SIZES = {'QQVGA': (160, 120), 'QCIF': (176, 144), 'HQVGA': (240, 176),
         '240X240': (240, 240), 'QVGA': (320, 240), 'CIF': (400, 296),
         'HVGA': (480, 320), 'VGA': (640, 480), 'SVGA': (800, 600),
         'XGA': (1024, 768), 'HD': (1280, 720), 'SXGA': (1280, 1024),
         'UXGA': (1600, 1200)}


def scopes(hostname):
    """The ONVIF scopes (discovery and GetScopes say the same)."""
    return ('onvif://www.onvif.org/Profile/Streaming',
            'onvif://www.onvif.org/type/video_encoder',
            'onvif://www.onvif.org/hardware/ESP32-CAM',
            'onvif://www.onvif.org/name/' + hostname)


class Onvif:
    """Answers SOAP requests: answer(path, request) -> (body, status)."""

    def __init__(self, facts, recorder, guard):
        # facts: a callable -> dict of hostname, ip, http_port, rtsp_port,
        # mac ('aa:bb:..'), framesize, quality, fps: read at each request
        self.facts = facts
        self.recorder = recorder
        self.guard = guard
        self.device = {
            'GetSystemDateAndTime': self._date_and_time,
            'GetDeviceInformation': self._device_information,
            'GetCapabilities': self._capabilities,
            'GetServices': self._services,
            'GetServiceCapabilities': self._device_service_capabilities,
            'GetScopes': self._scopes,
            'GetHostname': self._hostname,
            'GetNetworkInterfaces': self._network_interfaces,
        }
        self.media = {
            'GetServiceCapabilities': self._media_service_capabilities,
            'GetProfiles': self._profiles,
            'GetProfile': self._profile,
            'GetStreamUri': self._stream_uri,
            'GetSnapshotUri': self._snapshot_uri,
            'GetVideoSources': self._video_sources,
            'GetVideoSourceConfigurations': self._video_source_configurations,
            'GetVideoEncoderConfigurations': self._video_encoder_configurations,
            'GetVideoEncoderConfiguration': self._video_encoder_configuration,
        }

    def answer(self, path, request):
        """(reply bytes, HTTP status) for a POST to one of the services."""
        body = request.body or b''
        if len(body) > MAX_BODY:
            return soap.fault('Sender', 'ter:InvalidArgVal', 'Request too large'), 400
        action = soap.first_in_body(body)
        if action is None:
            return soap.fault('Sender', 'ter:WellFormed', 'No SOAP Body'), 400
        table = self.device if path == DEVICE_PATH else self.media
        handler = table.get(action)
        if not (path == DEVICE_PATH and action == 'GetSystemDateAndTime'):
            refusal = self._authorise(request, body)
            if refusal is not None:
                return refusal
        if handler is None:
            return soap.fault('Receiver', 'ter:ActionNotSupported',
                              'Action not supported: ' + action[:40]), 500
        facts = self.facts()
        host = request.headers.get('Host') or '%s:%d' % (facts['ip'], facts['http_port'])
        facts['base'] = 'http://' + soap.escape(host)
        facts['host'] = soap.escape(_host_name(host))
        reply = handler(facts, body)
        if isinstance(reply, tuple):
            return reply
        return soap.envelope(_NS, reply), 200

    def _authorise(self, request, body):
        address = client_address(request)
        backoff = self.guard.backoff
        if backoff.locked_s(address):
            return soap.fault('Sender', 'ter:NotAuthorized', 'Locked out, try later'), 400
        if soap.text(body, b'Username') is None:
            return soap.fault('Sender', 'ter:NotAuthorized', 'Sender not authorized'), 400
        if self.recorder.username_token_ok(body):
            backoff.succeeded(address)
            return None
        backoff.failed(address)
        return soap.fault('Sender', 'ter:NotAuthorized', 'Sender not authorized'), 400

    # --- device service --------------------------------------------------------
    def _date_and_time(self, facts, body):
        t = time.gmtime()
        return ('<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>'
                '<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false'
                '</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>'
                '<tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute>'
                '<tt:Second>%d</tt:Second></tt:Time><tt:Date><tt:Year>%d</tt:Year>'
                '<tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime>'
                '</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>'
                % (t[3], t[4], t[5], t[0], t[1], t[2]))

    def _device_information(self, facts, body):
        return ('<tds:GetDeviceInformationResponse><tds:Manufacturer>AI-Thinker'
                '</tds:Manufacturer><tds:Model>ESP32-CAM</tds:Model><tds:FirmwareVersion>'
                '%s</tds:FirmwareVersion><tds:SerialNumber>%s</tds:SerialNumber>'
                '<tds:HardwareId>ESP32-CAM</tds:HardwareId></tds:GetDeviceInformationResponse>'
                % (VERSION, facts['mac'].replace(':', '')))

    def _capabilities(self, facts, body):
        return ('<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>%s%s'
                '</tt:XAddr></tt:Device><tt:Media><tt:XAddr>%s%s</tt:XAddr>'
                '<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>'
                '<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>'
                '</tt:StreamingCapabilities></tt:Media></tds:Capabilities>'
                '</tds:GetCapabilitiesResponse>'
                % (facts['base'], DEVICE_PATH, facts['base'], MEDIA_PATH))

    def _services(self, facts, body):
        one = ('<tds:Service><tds:Namespace>%s</tds:Namespace><tds:XAddr>%s%s</tds:XAddr>'
               '<tds:Version><tt:Major>2</tt:Major><tt:Minor>%d</tt:Minor></tds:Version>'
               '</tds:Service>')
        return ('<tds:GetServicesResponse>' + one % (_DEVICE_NS, facts['base'], DEVICE_PATH, 5)
                + one % (_MEDIA_NS, facts['base'], MEDIA_PATH, 5) + '</tds:GetServicesResponse>')

    def _device_service_capabilities(self, facts, body):
        return ('<tds:GetServiceCapabilitiesResponse><tds:Capabilities><tds:Network/>'
                '<tds:Security UsernameToken="true" HttpDigest="false"/><tds:System/>'
                '</tds:Capabilities></tds:GetServiceCapabilitiesResponse>')

    def _scopes(self, facts, body):
        items = ''.join('<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>%s'
                        '</tt:ScopeItem></tds:Scopes>' % soap.escape(scope)
                        for scope in scopes(facts['hostname']))
        return '<tds:GetScopesResponse>%s</tds:GetScopesResponse>' % items

    def _hostname(self, facts, body):
        return ('<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false'
                '</tt:FromDHCP><tt:Name>%s</tt:Name></tds:HostnameInformation>'
                '</tds:GetHostnameResponse>' % soap.escape(facts['hostname']))

    def _network_interfaces(self, facts, body):
        return ('<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="wlan0">'
                '<tt:Enabled>true</tt:Enabled><tt:Info><tt:Name>wlan0</tt:Name>'
                '<tt:HwAddress>%s</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>'
                '</tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>' % facts['mac'])

    # --- media service ---------------------------------------------------------
    def _media_service_capabilities(self, facts, body):
        return ('<trt:GetServiceCapabilitiesResponse><trt:Capabilities SnapshotUri="true" '
                'Rotation="false" VideoSourceMode="false" OSD="false">'
                '<trt:ProfileCapabilities MaximumNumberOfProfiles="1"/>'
                '<trt:StreamingCapabilities RTPMulticast="false" RTP_TCP="true" '
                'RTP_RTSP_TCP="true" NonAggregateControl="false"/></trt:Capabilities>'
                '</trt:GetServiceCapabilitiesResponse>')

    def _profile_xml(self, facts, element):
        width, height = SIZES.get(facts['framesize'], (640, 480))
        return ('<%s token="%s" fixed="true"><tt:Name>camera</tt:Name>'
                '<tt:VideoSourceConfiguration token="vsc0"><tt:Name>camera</tt:Name>'
                '<tt:UseCount>1</tt:UseCount><tt:SourceToken>vs0</tt:SourceToken>'
                '<tt:Bounds x="0" y="0" width="%d" height="%d"/></tt:VideoSourceConfiguration>'
                '<tt:VideoEncoderConfiguration token="vec0">%s</tt:VideoEncoderConfiguration>'
                '</%s>' % (element, PROFILE, width, height, _encoder(facts), element))

    def _profiles(self, facts, body):
        return ('<trt:GetProfilesResponse>%s</trt:GetProfilesResponse>'
                % self._profile_xml(facts, 'trt:Profiles'))

    def _profile(self, facts, body):
        refusal = _check_profile(body)
        return refusal or ('<trt:GetProfileResponse>%s</trt:GetProfileResponse>'
                           % self._profile_xml(facts, 'trt:Profile'))

    def _stream_uri(self, facts, body):
        refusal = _check_profile(body)
        return refusal or _media_uri('trt:GetStreamUriResponse', 'rtsp://%s:%d/stream' % (
            facts['host'], facts['rtsp_port']))

    def _snapshot_uri(self, facts, body):
        refusal = _check_profile(body)
        return refusal or _media_uri('trt:GetSnapshotUriResponse',
                                     facts['base'] + '/snapshot.jpg')

    def _video_sources(self, facts, body):
        width, height = SIZES.get(facts['framesize'], (640, 480))
        return ('<trt:GetVideoSourcesResponse><trt:VideoSources token="vs0"><tt:Framerate>%d'
                '</tt:Framerate><tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d'
                '</tt:Height></tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>'
                % (facts['fps'], width, height))

    def _video_source_configurations(self, facts, body):
        width, height = SIZES.get(facts['framesize'], (640, 480))
        return ('<trt:GetVideoSourceConfigurationsResponse><trt:Configurations token="vsc0">'
                '<tt:Name>camera</tt:Name><tt:UseCount>1</tt:UseCount><tt:SourceToken>vs0'
                '</tt:SourceToken><tt:Bounds x="0" y="0" width="%d" height="%d"/>'
                '</trt:Configurations></trt:GetVideoSourceConfigurationsResponse>'
                % (width, height))

    def _video_encoder_configurations(self, facts, body):
        return ('<trt:GetVideoEncoderConfigurationsResponse><trt:Configurations token="vec0">'
                '%s</trt:Configurations></trt:GetVideoEncoderConfigurationsResponse>'
                % _encoder(facts))

    def _video_encoder_configuration(self, facts, body):
        token = soap.text(body, b'ConfigurationToken')
        if token is not None and token != b'vec0':
            return soap.fault('Sender', 'ter:NoConfig', 'No such configuration'), 400
        return ('<trt:GetVideoEncoderConfigurationResponse><trt:Configuration token="vec0">'
                '%s</trt:Configuration></trt:GetVideoEncoderConfigurationResponse>'
                % _encoder(facts))


def _encoder(facts):
    width, height = SIZES.get(facts['framesize'], (640, 480))
    # the sensor's quality runs 0 (best) to 63; ONVIF's is "higher is better"
    quality = max(1, 100 - facts['quality'] * 100 // 63)
    return ('<tt:Name>jpeg</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>JPEG</tt:Encoding>'
            '<tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution>'
            '<tt:Quality>%d</tt:Quality><tt:RateControl><tt:FrameRateLimit>%d'
            '</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>'
            '<tt:BitrateLimit>0</tt:BitrateLimit></tt:RateControl><tt:Multicast><tt:Address>'
            '<tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address>'
            '<tt:Port>0</tt:Port><tt:TTL>0</tt:TTL><tt:AutoStart>false</tt:AutoStart>'
            '</tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout>'
            % (width, height, quality, facts['fps']))


def _media_uri(element, uri):
    return ('<%s><trt:MediaUri><tt:Uri>%s</tt:Uri><tt:InvalidAfterConnect>false'
            '</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>'
            '<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></%s>' % (element, uri, element))


def _check_profile(body):
    token = soap.text(body, b'ProfileToken')
    if token is not None and token != PROFILE.encode():
        return soap.fault('Sender', 'ter:NoProfile', 'No such profile'), 400
    return None


def _host_name(host):
    """The name in a Host header value, without its port."""
    if host.startswith('['):
        return host[:host.find(']') + 1]
    return host.split(':')[0]
