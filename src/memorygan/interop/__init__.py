"""Interoperability with other codebases' checkpoints."""
from memorygan.interop.ssg_official import (export_ssg, export_ssg_checkpoint, import_ssg, infer_ssg_config,
                                            official_to_state_dict, read_official_checkpoint)

__all__ = ["import_ssg", "export_ssg", "export_ssg_checkpoint", "infer_ssg_config", "official_to_state_dict",
           "read_official_checkpoint"]
