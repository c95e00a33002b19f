"""The sandbox and what runs in it: bubblewrap, the kernel, the probes, the channel back."""
