"""Trainers (SFT, GRPO) and the readers that stream their data from the warehouse."""
