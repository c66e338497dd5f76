"""Drives Osteo EDC's DICOMweb service with dicomweb-client (a client no one
here wrote), as an archive or an analysis script would, and prints what it
saw as one JSON object for tests/tests/dicomweb.rs to check.

    python client.py BASE_URL TOKEN store FILE...
    python client.py BASE_URL TOKEN read PATIENT_ID
"""

import json
import sys

import pydicom
from dicomweb_client.api import DICOMwebClient


def as_list(value):
    """A multi-valued attribute as a list (pydicom gives one value bare)."""
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def main():
    base, token, action, *args = sys.argv[1:]
    client = DICOMwebClient(url=base, headers={"Authorization": f"Bearer {token}"})
    if action == "store":
        datasets = [pydicom.dcmread(path) for path in args]
        answer = client.store_instances(datasets)
        referenced = answer.get("ReferencedSOPSequence", [])
        failed = answer.get("FailedSOPSequence", [])
        print(json.dumps({
            "sent": [str(ds.SOPInstanceUID) for ds in datasets],
            "referenced": [str(item.ReferencedSOPInstanceUID) for item in referenced],
            "retrieve_urls": [str(item.get("RetrieveURL", "")) for item in referenced],
            "failed": [int(item.FailureReason) for item in failed],
        }))
    elif action == "read":
        (patient_id,) = args
        studies = client.search_for_studies(search_filters={"PatientID": patient_id})
        out = {"studies": [], "instances": []}
        for study in studies:
            study = pydicom.Dataset.from_json(study)
            uid = str(study.StudyInstanceUID)
            out["studies"].append({
                "uid": uid,
                "patient_id": str(study.PatientID),
                "instances": int(study.NumberOfStudyRelatedInstances),
                "modalities": as_list(study.ModalitiesInStudy),
            })
            series = client.search_for_series(study_instance_uid=uid)
            # As stored: transfer-syntax=*.
            for found in client.retrieve_study(uid, media_types=(("application/dicom", "*"),)):
                out["instances"].append({
                    "study": str(found.StudyInstanceUID),
                    "series": str(found.SeriesInstanceUID),
                    "instance": str(found.SOPInstanceUID),
                    "transfer_syntax": str(found.file_meta.TransferSyntaxUID),
                    "patient_id": str(found.PatientID),
                    "patient_name": str(found.PatientName),
                    "identity_removed": str(found.get("PatientIdentityRemoved", "")),
                    "rows": int(found.Rows),
                    "pixels": int(found.pixel_array.size),
                })
            out["series"] = len(series)
            first = out["instances"][0]
            # No transfer syntax named: Explicit VR Little Endian, decoded
            # from whatever is stored.
            compressed = [i for i in out["instances"] if i["transfer_syntax"] != "1.2.840.10008.1.2.1"]
            first = (compressed or out["instances"])[0]
            plain = client.retrieve_instance(
                first["study"], first["series"], first["instance"],
                media_types=("application/dicom",),
            )
            out["explicit_le"] = str(plain.file_meta.TransferSyntaxUID)
            out["explicit_le_pixels"] = int(plain.pixel_array.size)
            metadata = client.retrieve_study_metadata(uid)
            out["metadata"] = [
                {"instance": m["00080018"]["Value"][0], "has_pixels": "7FE00010" in m}
                for m in metadata
            ]
        print(json.dumps(out))
    else:
        sys.exit(f"unknown action {action}")


if __name__ == "__main__":
    main()
