"""The distillation subsystem: teacher, student, losses, trainer, evaluation, publishing."""
