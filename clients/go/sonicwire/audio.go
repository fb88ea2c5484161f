package sonicwire

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// Sonicwire speaks 16-bit signed little-endian PCM, mono, at one of these rates.
var SupportedSampleRates = []int{8000, 16000, 24000, 48000}

const sampleBytes = 2

// PCM is mono PCM s16le audio and its sample rate.
type PCM struct {
	Data         []byte
	SampleRateHz int
}

// DurationMs is the length in milliseconds (rounded down).
func (a PCM) DurationMs() int {
	if a.SampleRateHz <= 0 {
		return 0
	}
	return len(a.Data) / sampleBytes * 1000 / a.SampleRateHz
}

// Silence is durationMs of digital silence at sampleRateHz.
func Silence(durationMs, sampleRateHz int) []byte {
	return make([]byte, sampleRateHz*durationMs/1000*sampleBytes)
}

// ParseWAV reads a WAV file's bytes as mono 16-bit PCM, mixing several channels down to mono.
// Errors wrap ErrAudioFormat and say how to convert the file.
func ParseWAV(data []byte, name string) (PCM, error) {
	convert := "convert it with `ffmpeg -i IN -ac 1 -ar 16000 -c:a pcm_s16le OUT.wav`"
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return PCM{}, fmt.Errorf("%w: %s: not a WAV file; %s", ErrAudioFormat, name, convert)
	}
	var format, channels, bits uint16
	var rate uint32
	var samples []byte
	haveFormat := false
	for at := 12; at+8 <= len(data); {
		id := string(data[at : at+4])
		size := int(binary.LittleEndian.Uint32(data[at+4 : at+8]))
		end := at + 8 + size
		if end > len(data) || end < at {
			end = len(data)
		}
		body := data[at+8 : end]
		if id == "fmt " && len(body) >= 16 {
			format = binary.LittleEndian.Uint16(body[0:2])
			channels = binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			bits = binary.LittleEndian.Uint16(body[14:16])
			haveFormat = true
		} else if id == "data" {
			samples = body
			break
		}
		at += 8 + size + size%2 // chunks are padded to an even length
	}
	if !haveFormat || samples == nil {
		return PCM{}, fmt.Errorf("%w: %s: a WAV file without fmt or data chunk; %s", ErrAudioFormat, name, convert)
	}
	// 1 is PCM; 0xFFFE (WAVE_FORMAT_EXTENSIBLE) is how many tools write plain PCM too.
	if (format != 1 && format != 0xfffe) || bits != 16 {
		return PCM{}, fmt.Errorf("%w: %s: %d-bit samples (format %d); Sonicwire needs 16-bit PCM. "+
			"Convert with `sox IN -b 16 OUT.wav` or `ffmpeg -i IN -c:a pcm_s16le OUT.wav`",
			ErrAudioFormat, name, bits, format)
	}
	supported := false
	for _, r := range SupportedSampleRates {
		supported = supported || int(rate) == r
	}
	if !supported {
		return PCM{}, fmt.Errorf("%w: %s: sample rate %d Hz; Sonicwire accepts %v Hz. "+
			"Resample with `sox IN -r 16000 OUT.wav`", ErrAudioFormat, name, rate, SupportedSampleRates)
	}
	if channels <= 1 {
		return PCM{Data: append([]byte(nil), samples[:len(samples)-len(samples)%sampleBytes]...), SampleRateHz: int(rate)}, nil
	}
	frameBytes := sampleBytes * int(channels)
	frames := len(samples) / frameBytes
	mono := make([]byte, frames*sampleBytes)
	for f := 0; f < frames; f++ {
		sum := 0
		for c := 0; c < int(channels); c++ {
			at := f*frameBytes + c*sampleBytes
			sum += int(int16(binary.LittleEndian.Uint16(samples[at : at+2])))
		}
		mean := sum / int(channels)
		if sum%int(channels) != 0 && sum < 0 {
			mean-- // floor, as the Python and TypeScript clients round
		}
		binary.LittleEndian.PutUint16(mono[f*sampleBytes:], uint16(int16(mean)))
	}
	return PCM{Data: mono, SampleRateHz: int(rate)}, nil
}

// ReadWAV reads a WAV file as mono 16-bit PCM (see ParseWAV).
func ReadWAV(path string) (PCM, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return PCM{}, err
	}
	return ParseWAV(data, path)
}

// EncodeWAV encodes mono PCM s16le as a WAV file with the canonical 44-byte header.
func EncodeWAV(audio PCM) []byte {
	size := len(audio.Data) - len(audio.Data)%sampleBytes
	out := make([]byte, 44+size)
	copy(out[0:], "RIFF")
	binary.LittleEndian.PutUint32(out[4:], uint32(36+size))
	copy(out[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(out[16:], 16)
	binary.LittleEndian.PutUint16(out[20:], 1) // PCM
	binary.LittleEndian.PutUint16(out[22:], 1) // mono
	binary.LittleEndian.PutUint32(out[24:], uint32(audio.SampleRateHz))
	binary.LittleEndian.PutUint32(out[28:], uint32(audio.SampleRateHz*sampleBytes))
	binary.LittleEndian.PutUint16(out[32:], sampleBytes)
	binary.LittleEndian.PutUint16(out[34:], 8*sampleBytes)
	copy(out[36:], "data")
	binary.LittleEndian.PutUint32(out[40:], uint32(size))
	copy(out[44:], audio.Data[:size])
	return out
}

// WriteWAV writes mono PCM s16le as a WAV file.
func WriteWAV(path string, audio PCM) error {
	return os.WriteFile(path, EncodeWAV(audio), 0o644)
}

// Chunks splits PCM s16le into chunkMs chunks (the last one may be shorter).
func Chunks(audio PCM, chunkMs int) [][]byte {
	size := audio.SampleRateHz * chunkMs / 1000
	if size < 1 {
		size = 1
	}
	size *= sampleBytes
	usable := len(audio.Data) - len(audio.Data)%sampleBytes
	var chunks [][]byte
	for start := 0; start < usable; start += size {
		end := start + size
		if end > usable {
			end = usable
		}
		chunks = append(chunks, audio.Data[start:end])
	}
	return chunks
}

// AudioSink is anything audio can be sent to; a *Conversation is one.
type AudioSink interface {
	SendAudio(audio []byte) error
}

// StreamAudio sends audio in chunkMs chunks paced like a live microphone: chunk i is sent at
// i*chunkMs/speed after the start, so no drift accumulates. speed 0 sends as fast as possible.
// It returns the milliseconds sent; it stops early when ctx ends or a send fails.
func StreamAudio(ctx context.Context, sink AudioSink, audio PCM, chunkMs int, speed float64) (int, error) {
	if chunkMs <= 0 {
		return 0, fmt.Errorf("chunkMs must be positive")
	}
	start := time.Now()
	samples := 0
	for i, chunk := range Chunks(audio, chunkMs) {
		if speed > 0 {
			due := start.Add(time.Duration(float64(i*chunkMs) / speed * float64(time.Millisecond)))
			if wait := time.Until(due); wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					timer.Stop()
					return samples * 1000 / audio.SampleRateHz, ctx.Err()
				case <-timer.C:
				}
			}
		}
		if err := sink.SendAudio(chunk); err != nil {
			return samples * 1000 / audio.SampleRateHz, err
		}
		samples += len(chunk) / sampleBytes
	}
	return samples * 1000 / audio.SampleRateHz, nil
}
