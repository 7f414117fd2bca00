package mtls

import "time"

// ExpireRecheck makes the source's next handshake look at the files again,
// as if the recheck interval had passed since the last look: a test of a
// reload then needs no sleep through the interval, and no guess at how long
// a loaded machine takes to get there.
func (s *Source) ExpireRecheck() {
	s.mu.Lock()
	s.checked = time.Time{}
	s.mu.Unlock()
}
