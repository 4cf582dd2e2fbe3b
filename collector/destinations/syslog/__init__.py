"""The Syslog destination kind (registered as ``collector.destinations.syslog.SyslogKind``).

``frames`` builds the bytes (headers, JSON or CEF payload, framing), ``transport`` owns sockets,
TLS and the classification of their failures, ``kind`` the kind and its session, ``forms`` the
Add/Edit form. No syslog library is used: the ones on PyPI are ``logging`` handlers that send
one record at a time, while delivery needs a whole batch framed into one buffer.
"""

from collector.destinations.syslog.kind import SyslogKind, SyslogSession, SyslogSettings

__all__ = ["SyslogKind", "SyslogSession", "SyslogSettings"]
