package creds

// Cached reports how many token sources and VAPID signers the store keeps,
// for the tests of their eviction.
func (s *Store) Cached() (sources, signers int) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return len(s.sources), len(s.signers)
}
