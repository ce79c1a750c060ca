package cli

// UnitCmd groups the unit commands.
type UnitCmd struct{}
