"""``artifacts`` of batch jobs and steps: files the agent fetches into each task's
sandbox before its command starts (docs/fetcher.md).

    artifacts:
      - https://example.com/tools/report-1.2.tgz          # extracted (an archive)
      - {uri: /srv/share/run.sh, executable: true}         # a file of the agent's
      - {uri: "https://example.com/dl?id=7", output_file: data.csv, cache: true}

A bare string is ``{uri: ...}``.  ``extract`` defaults to true (archives are unpacked
by their extension), ``executable`` and ``cache`` to false; ``output_file`` renames
the download inside the sandbox.  A step inherits the job's ``artifacts`` unless it
sets its own (like every task field).  Metronome's ``run.artifacts`` ({uri,
executable, extract, cache}) maps here.  Pure: parsing and the Mesos ``CommandURI``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from frameworks.batch.fields import Reader, join_path
from mesoslite.messages.mesos import CommandURI
from mesoslite.uris import uri_error

FIELDS = ("uri", "executable", "extract", "cache", "output_file")
_FIELD_OF = {"value": "uri", "output_file": "output_file"}


@dataclass(frozen=True)
class JobArtifact:
    uri: str
    executable: bool = False
    extract: bool = True
    cache: bool = False
    output_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uri": self.uri, "executable": self.executable,
                               "extract": self.extract, "cache": self.cache}
        if self.output_file is not None:
            out["output_file"] = self.output_file
        return out

    def to_mesos(self) -> CommandURI:
        return CommandURI(value=self.uri, executable=self.executable, extract=self.extract,
                          cache=self.cache, output_file=self.output_file)


def job_artifacts(reader: Reader) -> tuple[JobArtifact, ...] | None:
    """``artifacts`` as ``JobArtifact``s (errors added with their paths); None when
    absent."""
    raw = reader.data.get("artifacts")
    if raw is None:
        return None
    where = reader.at("artifacts")
    if not isinstance(raw, list):
        reader.errors.add(where, "must be a list of URIs or {uri, executable, extract, cache, "
                                 "output_file}")
        return None
    out: list[JobArtifact] = []
    for i, item in enumerate(raw):
        at = join_path(where, i)
        if isinstance(item, str):
            item = {"uri": item}
        if not isinstance(item, Mapping):
            reader.errors.add(at, "must be a URI or {uri, executable, extract, cache, "
                                  "output_file}")
            continue
        artifact = _artifact(Reader(item, at, reader.errors))
        if artifact is not None:
            out.append(artifact)
    return tuple(out)


def _artifact(sub: Reader) -> JobArtifact | None:
    sub.unknown(FIELDS)
    uri = sub.string("uri")
    if uri is None:
        if "uri" not in sub.data:
            sub.errors.add(sub.at("uri"), "is required")
        return None
    flags = {k: sub.boolean(k) for k in ("executable", "extract", "cache")}
    artifact = JobArtifact(uri, **{k: v for k, v in flags.items() if v is not None},
                           output_file=sub.string("output_file"))
    problem = uri_error(artifact.to_mesos())
    if problem is not None:
        sub.errors.add(sub.at(_FIELD_OF[problem[0]]), problem[1])
        return None
    return artifact
