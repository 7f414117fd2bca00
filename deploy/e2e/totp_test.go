package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// totpPeriod is the TOTP time step.
const totpPeriod = 30 * time.Second

// totpMargin keeps a chosen step away from the edges of the window the
// service accepts (one step either side of its clock), for the time a
// request takes to arrive.
const totpMargin = 3 * time.Second

// usedSteps is, per secret, the newest step this process has handed out.
// The service accepts each code once, and never one older than the newest
// it accepted, so every login of a user needs a step above the last; the
// window lets three through per 30 s, so tests seldom wait.
var usedSteps = struct {
	sync.Mutex
	last map[string]int64
}{last: map[string]int64{}}

func totpStep(t time.Time) int64 { return t.Unix() / int64(totpPeriod/time.Second) }

// totpCode returns a code of secret (base32) that the service accepts now
// and that no earlier call returned, waiting for the clock if this process
// has used every step the service would accept.
func totpCode(t *testing.T, secret string) string {
	t.Helper()
	code, _ := totpCodeStep(t, secret)
	return code
}

// totpCodeStep is totpCode, also returning the step the code belongs to.
func totpCodeStep(t *testing.T, secret string) (string, int64) {
	t.Helper()
	for {
		usedSteps.Lock()
		now := time.Now()
		lo, hi := totpStep(now.Add(totpMargin))-1, totpStep(now.Add(-totpMargin))+1
		step := max(lo, usedSteps.last[secret]+1)
		if step <= hi {
			usedSteps.last[secret] = step
			usedSteps.Unlock()
			code, err := hotp.GenerateCodeCustom(strings.ToUpper(secret), uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			if err != nil {
				t.Fatalf("TOTP code of %q: %v", secret, err)
			}
			return code, step
		}
		usedSteps.Unlock()
		next := time.Unix((totpStep(now)+1)*int64(totpPeriod/time.Second), 0)
		time.Sleep(time.Until(next) + totpMargin)
	}
}
