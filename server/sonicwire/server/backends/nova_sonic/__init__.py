"""Amazon Nova Sonic backend (``--backend nova-sonic``).

Modules: ``codec`` (pure Nova JSON <-> core events), ``connection`` (`NovaSonicBackend`,
`NovaSonicSession`), ``continuation`` (stream switching before Nova's ~8-minute limit),
``stream`` (one SDK stream), ``config`` (options and environment), ``errors`` (failure ->
reason/code), ``transport`` (CRT transport with a custom trust store). Nothing heavy is
imported here: the registry imports ``connection`` only when the backend is chosen.
"""
