"""An assignment as a plug-in: its folder discovered, released, checked, sampled."""
