package sonicwire

import (
	"context"
	"math"
	"math/rand"
	"time"

	"google.golang.org/grpc/codes"
)

// RetryPolicy is exponential backoff with jitter for UNAVAILABLE while connecting: for unary
// calls, and for a conversation until its SessionStarted (nothing but the configuration has
// been sent then). A started conversation is never retried.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included; 1 disables retries.
	MaxAttempts int
	// InitialDelay is the delay before the second attempt, doubled for each further one.
	InitialDelay time.Duration
	// MaxDelay bounds one delay.
	MaxDelay time.Duration
	// Jitter is the relative jitter, 0.2 for ±20 %.
	Jitter float64
}

// DefaultRetry is used when Options.Retry is the zero value: 4 attempts, 250 ms doubling, ±20 %.
var DefaultRetry = RetryPolicy{MaxAttempts: 4, InitialDelay: 250 * time.Millisecond, MaxDelay: 2 * time.Second, Jitter: 0.2}

// NoRetry never retries.
var NoRetry = RetryPolicy{MaxAttempts: 1}

// Delay is the wait after failed attempt number attempt (1-based).
func (p RetryPolicy) Delay(attempt int) time.Duration {
	base := math.Min(float64(p.InitialDelay)*math.Pow(2, float64(attempt-1)), float64(p.MaxDelay))
	return time.Duration(base * (1 + p.Jitter*(2*rand.Float64()-1)))
}

// withRetries runs attempt until it succeeds, retrying only UNAVAILABLE, within the policy's
// attempts and before deadline (zero: none).
func withRetries(ctx context.Context, policy RetryPolicy, deadline time.Time, attempt func(n int) error) error {
	for n := 1; ; n++ {
		err := attempt(n)
		if err == nil || !IsCode(err, codes.Unavailable) || n >= policy.MaxAttempts {
			return err
		}
		delay := policy.Delay(n)
		if !deadline.IsZero() && time.Now().Add(delay).After(deadline) {
			return err
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}
