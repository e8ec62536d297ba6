// Package provideraddr names the provider where Terraform and OpenTofu look for it. It is a package of its own, with
// no dependencies, so that the provider's main, the benchmark's floor, the tools and the tests share one spelling.
package provideraddr

const (
	// Name is the provider's type name: the prefix of its resource types and its local name in configurations.
	Name = "bipsync"

	// Source is the provider's source address as users write it in required_providers and in a CLI configuration's
	// dev_overrides. Without a host, each engine resolves it on its own registry.
	Source = "bipsync/" + Name

	// Address is the full address the plugin serves under. OpenTofu maps registry.terraform.io sources to its own
	// registry, so one address serves both engines.
	Address = "registry.terraform.io/" + Source

	// Binary is the file name engines look for in a plugin or dev_overrides directory (with .exe on Windows).
	Binary = "terraform-provider-" + Name
)
