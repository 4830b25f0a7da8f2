"""The profiler behind ``llmsizer profile``: run an engine on real GPUs and write what it measured as a profile.

Modules, one job each: ``campaign`` (campaign files: validation with line numbers, expansion), ``plan`` (one run and
its command line), ``driver`` (the child process: log capture, time limit, process group), ``devices`` (device
memory readers: NVML, amdsmi, or one plugged in), ``sampler`` (baseline / peak / final), ``assemble`` (profiles
from a log and device readings), ``runner`` (one run end to end), ``campaign_run`` (a campaign: resume, campaign
log, progress, summary), ``transformers_run`` (the in-process transformers measurement), ``report`` (what is
printed).

Never imported by the pytest plugin or by ``llmsizer estimate``: only ``llmsizer profile`` loads it.
"""
