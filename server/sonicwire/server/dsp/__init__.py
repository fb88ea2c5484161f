"""Pure, synchronous audio DSP for one stream: no asyncio, grpc, clocks or I/O.

Canonical audio is 16 kHz mono s16le in 20 ms frames (:mod:`.frames`). Modules:

* :mod:`.frames` — constants and :class:`~.frames.FrameChunker`;
* :mod:`.settings` — the front end's settings and the VAD's events (plain data, no C library);
* :mod:`.resample` — soxr streaming resampler for the 8/16/24/48 kHz edges;
* :mod:`.speex` — our cffi binding of libspeexdsp (echo canceller, preprocessor);
* :mod:`.delay` — far-end timeline, GCC-PHAT delay estimator, delay tracker;
* :mod:`.aec` — the aligned echo-cancel + preprocess stage (speex);
* :mod:`.aec3` — the same behind WebRTC AEC3 (``FrontEndSettings.echo_engine="aec3"``);
* :mod:`.vad` — VAD engines (webrtcvad, Silero ONNX) and the speaking state machine;
* :mod:`.pipeline` — :class:`~.pipeline.FrontEnd`, what the session core drives.
"""
