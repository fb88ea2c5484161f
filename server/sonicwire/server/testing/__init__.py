"""Test helpers that ship with Sonicwire (importable without pytest). Among them:

``fake_bedrock``: a local Amazon Bedrock endpoint for Nova Sonic (`FakeBedrock`), with
``fake_scenario`` (scripted behaviour per stream), ``fake_stream`` (what a script sees) and
``bedrock_wire`` (the event-stream framing).
"""
