"""Test helpers that ship with Sonicwire (importable without pytest). Among them:

``fake_bedrock``: a local Amazon Bedrock endpoint for Nova Sonic (`FakeBedrock`), with
``fake_scenario`` (scripted behaviour per stream), ``fake_stream`` (what a script sees) and
``bedrock_wire`` (the event-stream framing); ``local_harness``: drives a local-engine session
the way the server does (test speech, mic streams, tools in-process, a reply recogniser);
``tools``: a recorder of tool outcomes and dispatches and a manual clock for `ToolRunner` tests.

Nothing in the server imports this package (``tests/test_product_imports.py``); its extra
dependencies are the ``testing`` extra's (``local_harness`` also needs the ``local`` extra and
Debian's espeak-ng).
"""
