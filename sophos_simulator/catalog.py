"""What the simulator serves: vocabularies from the contract and fast, seeded item generation.

Items are rendered once, straight to compact JSON bytes, from templates whose constant parts are
escaped ahead of time; a million items take seconds, not minutes. Every item's JSON starts with
``{"id":"<36-char uuid>"`` so an id can be read back at a fixed offset without parsing.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from json.encoder import encode_basestring_ascii as _q

# The 33 alert categories of the seed, with the product and a typical type and description.
CATEGORIES: tuple[tuple[str, str, str, str], ...] = (
    (
        "azure",
        "iaas",
        "Event::Iaas::Azure::PolicyViolation",
        "Azure resource violates policy on {host}.",
    ),
    ("adSync", "other", "Event::ADSync::SyncFailed", "Active Directory synchronization failed."),
    (
        "applicationControl",
        "endpoint",
        "Event::Endpoint::Application::Blocked",
        "Controlled application blocked on {host}: 'uTorrent'.",
    ),
    (
        "appReputation",
        "endpoint",
        "Event::Endpoint::AppReputation::Blocked",
        "Low-reputation application blocked on {host}.",
    ),
    (
        "blockListed",
        "endpoint",
        "Event::Endpoint::Threat::BlockListed",
        "Blocked item found on {host}.",
    ),
    (
        "connectivity",
        "firewall",
        "Event::Firewall::LostConnectionToSophosCentral",
        "Firewall {host} lost its connection to Sophos Central.",
    ),
    (
        "cwg",
        "webGateway",
        "Event::CWG::PolicyViolation",
        "Cloud web gateway blocked a site for {user}.",
    ),
    (
        "denc",
        "encryption",
        "Event::Endpoint::Denc::EncryptionSuspended",
        "Device encryption suspended on {host}.",
    ),
    (
        "downloadReputation",
        "endpoint",
        "Event::Endpoint::DownloadReputation::Blocked",
        "Download with poor reputation blocked on {host}.",
    ),
    (
        "endpointFirewall",
        "endpoint",
        "Event::Endpoint::Firewall::Blocked",
        "Firewall blocked an application on {host}.",
    ),
    (
        "fenc",
        "encryption",
        "Event::Endpoint::Fenc::KeyRevoked",
        "File encryption key revoked for {user}.",
    ),
    (
        "forensicSnapshot",
        "endpoint",
        "Event::Endpoint::ForensicSnapshot::Created",
        "Forensic snapshot created on {host}.",
    ),
    ("general", "other", "Event::Endpoint::Registered", "New computer registered: {host}."),
    (
        "iaas",
        "iaas",
        "Event::Iaas::Aws::InstanceUnprotected",
        "Cloud instance {host} is unprotected.",
    ),
    ("iaasAzure", "iaas", "Event::Iaas::Azure::VmUnprotected", "Azure VM {host} is unprotected."),
    (
        "isolation",
        "endpoint",
        "Event::Endpoint::Isolation::Isolated",
        "{host} was isolated from the network.",
    ),
    (
        "malware",
        "endpoint",
        "Event::Endpoint::Threat::Detected",
        "Malware detected on {host}: 'Troj/Agent-BFKT'.",
    ),
    (
        "mtr",
        "endpoint",
        "Event::Endpoint::MTR::CaseOpened",
        "Managed threat response case opened for {host}.",
    ),
    (
        "mobiles",
        "mobile",
        "Event::Mobile::DeviceNonCompliant",
        "Mobile device of {user} is not compliant.",
    ),
    (
        "policy",
        "endpoint",
        "Event::Endpoint::NonCompliant",
        "{host} does not comply with its policy.",
    ),
    (
        "protection",
        "endpoint",
        "Event::Endpoint::ServiceNotRunning",
        "One or more Sophos services are not running on {host}.",
    ),
    (
        "pua",
        "endpoint",
        "Event::Endpoint::Threat::PuaCleanupFailed",
        "Manual PUA cleanup required on {host}: 'PUAqsw3kby31j'.",
    ),
    (
        "runtimeDetections",
        "endpoint",
        "Event::Endpoint::CoreDetection",
        "Malicious behavior detected on {host}.",
    ),
    (
        "security",
        "server",
        "Event::Endpoint::Security::TamperProtectionOff",
        "Tamper protection turned off on {host}.",
    ),
    ("smc", "mobile", "Event::SMC::DeviceRooted", "Rooted device detected for {user}."),
    (
        "systemHealth",
        "endpoint",
        "Event::Endpoint::SystemHealth::Red",
        "{host} has a bad health status.",
    ),
    ("uav", "server", "Event::Endpoint::UAV::ScanFailed", "Scheduled scan failed on {host}."),
    ("uncategorized", "other", "Event::Other::Notice", "Notice for {host}."),
    ("updating", "endpoint", "Event::Endpoint::OutOfDate", "{host} is out of date."),
    (
        "utm",
        "firewall",
        "Event::UTM::HaStatusChanged",
        "High availability status changed on {host}.",
    ),
    (
        "virt",
        "server",
        "Event::Endpoint::Virt::GuestUnprotected",
        "Virtual guest {host} is unprotected.",
    ),
    (
        "wireless",
        "wireless",
        "Event::Wireless::RogueAccessPoint",
        "Rogue access point detected near {host}.",
    ),
    (
        "xgEmail",
        "emailGateway",
        "Event::XGEmail::QuarantineFull",
        "Email quarantine is nearly full.",
    ),
)
# Categories newer than the seed's list: clients must accept them (they map to uncategorized).
UNKNOWN_CATEGORIES: tuple[tuple[str, str, str, str], ...] = (
    ("ztnaGateway", "ztna", "Event::ZTNA::GatewayOffline", "ZTNA gateway {host} is offline."),
    (
        "ztnaAuthentication",
        "ztna",
        "Event::ZTNA::AuthenticationFailed",
        "ZTNA sign-in failed for {user}.",
    ),
    (
        "ztnaResource",
        "ztna",
        "Event::ZTNA::ResourceUnreachable",
        "ZTNA resource unreachable from {host}.",
    ),
)

# SIEM event types: (type, group, severity, name template).
EVENT_TYPES: tuple[tuple[str, str, str, str], ...] = (
    (
        "Event::Endpoint::Threat::Detected",
        "MALWARE",
        "medium",
        "Malware detected: '{threat}' at '{path}'",
    ),
    (
        "Event::Endpoint::Threat::Cleaned",
        "MALWARE",
        "low",
        "Malware cleaned up: '{threat}' at '{path}'",
    ),
    (
        "Event::Endpoint::CoreDetection",
        "RUNTIME_DETECTIONS",
        "high",
        "Malicious behavior detected in '{path}'",
    ),
    (
        "Event::Endpoint::HmpaExploitPrevented",
        "RUNTIME_DETECTIONS",
        "high",
        "Exploit prevented in '{path}'",
    ),
    ("Event::Endpoint::UpdateSuccess", "UPDATING", "low", "Update succeeded"),
    ("Event::Endpoint::UpdateFailure", "UPDATING", "medium", "Failed to install updates"),
    ("Event::Endpoint::OutOfDate", "UPDATING", "medium", "{host} is out of date"),
    (
        "Event::Endpoint::Threat::PuaDetected",
        "PUA",
        "medium",
        "PUA detected: '{threat}' at '{path}'",
    ),
    (
        "Event::Endpoint::Threat::PuaCleanupFailed",
        "PUA",
        "medium",
        "Manual PUA cleanup required: '{threat}' at '{path}'",
    ),
    (
        "Event::Endpoint::ServiceNotRunning",
        "PROTECTION",
        "high",
        "One or more Sophos services are missing or not running",
    ),
    ("Event::Endpoint::ServiceRestored", "PROTECTION", "low", "Sophos services restored"),
    ("Event::Endpoint::WebControlViolation", "WEB", "low", "Website blocked: 'games.example.com'"),
    (
        "Event::Endpoint::WebFilteringBlocked",
        "WEB",
        "medium",
        "Malicious website blocked: 'malware.example.net'",
    ),
    ("Event::Endpoint::NonCompliant", "POLICY", "medium", "Computer non-compliant with policy"),
    ("Event::Endpoint::Compliant", "POLICY", "none", "Computer is compliant again"),
    (
        "Event::Endpoint::Application::Detected",
        "APPLICATION_CONTROL",
        "low",
        "Controlled application detected: 'uTorrent'",
    ),
    (
        "Event::Endpoint::Application::Blocked",
        "APPLICATION_CONTROL",
        "medium",
        "Controlled application blocked: 'uTorrent'",
    ),
    (
        "Event::Endpoint::Device::AlertedOnly",
        "DEVICE_CONTROL",
        "low",
        "Peripheral allowed: 'USB storage device'",
    ),
    (
        "Event::Endpoint::Isolation::Isolated",
        "ISOLATION",
        "high",
        "{host} isolated from the network",
    ),
    ("Event::Endpoint::Denc::EncryptionSuspended", "DENC", "medium", "Device encryption suspended"),
    ("Event::Endpoint::Firewall::Blocked", "ENDPOINT_FIREWALL", "low", "Firewall blocked '{path}'"),
    (
        "Event::Endpoint::DownloadReputation::Blocked",
        "DOWNLOAD_REPUTATION",
        "medium",
        "Download of '{path}' blocked",
    ),
    (
        "Event::Endpoint::SystemHealth::Red",
        "SYSTEM_HEALTH",
        "very_high",
        "{host} has a bad health status",
    ),
    ("Event::Endpoint::Registered", "GENERAL", "none", "New computer registered: {host}"),
    ("Event::Mobile::DeviceNonCompliant", "MOBILES", "critical", "Mobile device non-compliant"),
)
EVENT_TYPE_INDEX = {entry[0]: i for i, entry in enumerate(EVENT_TYPES)}

THREATS = ("Eicar-AV-Test", "Troj/Agent-BFKT", "Mal/Generic-S", "ML/PE-A", "PUAqsw3kby31j")
PATHS = (
    "C:\\Users\\Public\\Downloads\\eicar.com",
    "C:\\Program Files (x86)\\Tools\\setup.exe",
    "C:\\Windows\\Temp\\svch0st.exe",
    "/home/alice/Downloads/invoice.pdf.sh",
    "/Applications/Updater.app/Contents/MacOS/updater",
)
HOST_NAMES = (
    "mercury",
    "venus",
    "earth",
    "mars",
    "jupiter",
    "saturn",
    "WIN-SRV",
    "LAPTOP",
    "DESKTOP",
)
PLATFORMS = ("windows", "windows", "windows", "linux", "macOS")
TENANT_NAMES = (
    "Acme Ltd",
    "Globex Corporation",
    "Initech",
    "Umbrella plc",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Soylent Corp",
    "Tyrell Corporation",
    "Cyberdyne Systems",
)
# Alerts of these products name the device they concern in ``managedAgent``; only ``endpoint``
# alerts name an agent the Endpoint API serves (the Sumo source looks up those alone). Products
# missing here (other, emailGateway, webGateway, iaas) name no managed agent at all.
AGENT_TYPES = {
    "endpoint": None,  # the endpoint's own type: computer or server
    "server": "server",
    "encryption": "computer",
    "firewall": "firewall",
    "mobile": "mobile",
    "wireless": "accessPoint",
    "ztna": "ztnaGateway",
}
# Positions in CATEGORIES of the categories whose product is endpoint.
ENDPOINT_CATEGORIES = tuple(i for i, entry in enumerate(CATEGORIES) if entry[1] == "endpoint")
GEOGRAPHY = {"eu01": "IE", "eu02": "DE", "us01": "US", "us02": "US", "us03": "US", "ca01": "CA",
             "au01": "AU", "jp01": "JP", "in01": "IN", "br01": "BR"}  # fmt: skip

_EVENT = (
    '{"id":"%s","type":"%s","name":%s,"severity":"%s","group":"%s","when":"%s",'
    '"created_at":"%s","customer_id":"%s","endpoint_id":"%s","endpoint_type":"%s",'
    '"location":%s,"source":%s,"source_info":{"ip":"%s"},"origin":null,"user_id":%s,'
    '"threat":%s%s}'
)
_COMMON_ALERT = (
    '{"id":"%s","allowedActions":["acknowledge"],"category":"%s","description":%s,'
    '"groupKey":"%s",%s"person":{"id":"%s"},'
    '"product":"%s","raisedAt":"%s","severity":"%s","tenant":{"id":"%s","name":%s},"type":"%s"}'
)
_SIEM_ALERT = (
    '{"id":"%s","event_service_event_id":"%s","type":"%s","severity":"%s","threat":%s,'
    '"threat_cleanable":false,"when":"%s","created_at":"%s","customer_id":"%s","location":%s,'
    '"source":%s,"description":%s,"data":{"created_at":%d,"inserted_at":%d,"endpoint_id":"%s",'
    '"endpoint_platform":"%s","endpoint_type":"%s","source_app_id":"CORE",'
    '"source_info":{"ip":"%s"},"threat_status":"NONE"}}'
)


def uuid_from(rng: random.Random) -> str:
    """A version-4 looking UUID from the seeded generator (deterministic, unlike uuid.uuid4)."""
    n = rng.getrandbits(128)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[n & 3]}{h[17:20]}-{h[20:32]}"


def iso_ms(ms: int, zone: str = "Z") -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}{zone}"


class ItemFactory:
    """Renders one tenant's events and alerts from a seeded generator, in creation order."""

    def __init__(self, *, seed: int, tenant_id: str, tenant_name: str, config):
        self.rng = random.Random(f"{seed}:items:{tenant_id}")
        self.tenant_id = tenant_id
        self.tenant_name_json = _q(tenant_name)
        self.late_fraction = config.late_fraction
        self.late_max_ms = int(config.late_max_seconds * 1000)
        self.unknown_fraction = config.unknown_category_fraction
        self.zoneless_fraction = config.zoneless_fraction
        rng = random.Random(f"{seed}:endpoints:{tenant_id}")
        self.seed = seed
        self.endpoints = []
        for i in range(config.endpoints):
            name = f"{rng.choice(HOST_NAMES)}-{i + 1}"
            platform = rng.choice(PLATFORMS)
            self.endpoints.append(
                {
                    "id": uuid_from(rng),
                    "type": "server" if name.startswith("WIN-SRV") else "computer",
                    "host": name,
                    "host_json": _q(name),
                    "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    "platform": platform,
                    "user": f"CORP\\user{i + 1}",
                    "user_json": _q(f"CORP\\user{i + 1}"),
                    "person": uuid_from(rng),
                }
            )
        self.endpoint_index = {ep["id"]: i for i, ep in enumerate(self.endpoints)}
        self._names: dict[tuple[int, int], str] = {}
        self._alert_texts: dict[tuple[int, int], str] = {}
        self._agents: dict[tuple[str, int], str] = {}
        self._group_keys = {
            entry[2]: base64.b64encode(f"1,{entry[2]},{513 + i},".encode()).decode()
            for i, entry in enumerate(CATEGORIES + UNKNOWN_CATEGORIES)
        }

    def _when(self, created_ms: int) -> int:
        rng = self.rng
        if self.late_max_ms and rng.random() < self.late_fraction:
            return created_ms - rng.randrange(min(10_000, self.late_max_ms), self.late_max_ms + 1)
        return created_ms - rng.randrange(20, 2000)

    def event(
        self, created_ms: int, type_index: int | None = None, when_ms: int | None = None
    ) -> tuple[bytes, int]:
        """One SIEM event created at ``created_ms``: (JSON bytes, event type index)."""
        rng = self.rng
        if type_index is None:
            type_index = rng.randrange(len(EVENT_TYPES))
        etype, group, severity, template = EVENT_TYPES[type_index]
        ep_index = rng.randrange(len(self.endpoints))
        ep = self.endpoints[ep_index]
        variant = rng.randrange(len(PATHS))
        name = self._names.get((type_index, ep_index * 8 + variant))
        if name is None:
            text = template.format(host=ep["host"], threat=THREATS[variant], path=PATHS[variant])
            name = self._names[(type_index, ep_index * 8 + variant)] = _q(text)
        threatening = group in ("MALWARE", "PUA", "RUNTIME_DETECTIONS")
        extra = ""
        if threatening and rng.random() < 0.3:
            extra = f',"appSha256":"{rng.getrandbits(256):064x}"'
        text = _EVENT % (
            uuid_from(rng),
            etype,
            name,
            severity,
            group,
            iso_ms(self._when(created_ms) if when_ms is None else when_ms),
            iso_ms(created_ms),
            self.tenant_id,
            ep["id"],
            ep["type"],
            ep["host_json"],
            ep["user_json"] if rng.random() < 0.5 else '"n/a"',
            ep["ip"],
            f'"{ep["person"]}"' if rng.random() < 0.3 else "null",
            _q(THREATS[variant]) if threatening else "null",
            extra,
        )
        return text.encode(), type_index

    def _agent(self, product: str, ep_index: int) -> str:
        """The ``managedAgent`` member (with its trailing comma) of an alert, or "" for none.

        An endpoint alert names the endpoint; other products name a device of their own whose
        id is derived, not drawn, so the seeded sequence of every other value stays the same.
        """
        key = (product, ep_index)
        agent = self._agents.get(key)
        if agent is None:
            ep = self.endpoints[ep_index]
            if product == "endpoint":
                agent_id, agent_type = ep["id"], ep["type"]
            elif product in AGENT_TYPES:
                digest = hashlib.sha256(f"{self.seed}:{ep['id']}:{product}".encode()).hexdigest()
                agent_id = (
                    f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
                )
                agent_type = AGENT_TYPES[product]
            else:
                agent_id = ""
            agent = (
                f'"managedAgent":{{"id":"{agent_id}","type":"{agent_type}"}},' if agent_id else ""
            )
            self._agents[key] = agent
        return agent

    def alert(
        self, created_ms: int, raised_ms: int | None = None, endpoint: str | None = None
    ) -> tuple[bytes, bytes, int]:
        """One alert created at ``created_ms``: (SIEM alert JSON, Common alert JSON, raisedAt ms).

        ``endpoint`` (an endpoint id of this tenant) makes it an endpoint alert about that one.
        """
        rng = self.rng
        if endpoint is not None:
            index = ENDPOINT_CATEGORIES[rng.randrange(len(ENDPOINT_CATEGORIES))]
        elif rng.random() < self.unknown_fraction:
            index = len(CATEGORIES) + rng.randrange(len(UNKNOWN_CATEGORIES))
        else:
            index = rng.randrange(len(CATEGORIES))
        category, product, atype, template = (CATEGORIES + UNKNOWN_CATEGORIES)[index]
        if endpoint is not None:
            ep_index = self.endpoint_index[endpoint]
        else:
            ep_index = rng.randrange(len(self.endpoints))
        ep = self.endpoints[ep_index]
        description = self._alert_texts.get((index, ep_index))
        if description is None:
            text = template.format(host=ep["host"], user=ep["user"])
            description = self._alert_texts[(index, ep_index)] = _q(text)
        severity = ("low", "medium", "medium", "high")[rng.randrange(4)]
        if raised_ms is None:
            raised_ms = self._when(created_ms)
        alert_id = uuid_from(rng)
        zone = "" if rng.random() < self.zoneless_fraction else "Z"
        common = _COMMON_ALERT % (
            alert_id,
            category,
            description,
            self._group_keys[atype],
            self._agent(product, ep_index),
            ep["person"],
            product,
            iso_ms(raised_ms, zone),
            severity,
            self.tenant_id,
            self.tenant_name_json,
            atype,
        )
        siem = _SIEM_ALERT % (
            alert_id,
            alert_id,
            atype,
            severity,
            _q(THREATS[ep_index % len(THREATS)]) if category in ("malware", "pua") else "null",
            iso_ms(raised_ms),
            iso_ms(created_ms),
            self.tenant_id,
            ep["host_json"],
            ep["user_json"],
            description,
            created_ms,
            created_ms,
            ep["id"],
            ep["platform"],
            ep["type"],
            ep["ip"],
        )
        return siem.encode(), common.encode(), raised_ms
