//! De-identification on ingest (DICOM PS3.15 Annex E, Basic Application
//! Level Confidentiality Profile) with the options the analysis needs:
//! pixel spacing, view, laterality, body part, photometric interpretation,
//! window and bit depth are kept. Dates follow the study's setting
//! (`osteo_trial::study::DICOM_DATES`): kept (Retain Longitudinal Temporal
//! Information with Full Dates Option — the default, since the radiograph
//! date is a CRF field anyway) or moved back by the case's own random number
//! of days (Modified Dates Option). Patient name and ID become the
//! study number; instance UIDs are replaced consistently within the study
//! (the mapping is kept in the database and never exported, see
//! `osteo_trial::case::map_uids`); every private
//! attribute is removed.

use dicom_core::{Tag, VR};

/// What the profile does with an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// X: remove.
    Remove,
    /// Z: keep, empty. The Type 2 attributes of the Patient and General
    /// Study modules must be present in the object, so they stay, with no
    /// value (and are added empty when the sender left them out).
    Empty(VR),
    /// Z / D: replace with the study number.
    StudyNumber,
    /// U: replace with a consistent new UID.
    NewUid,
}

/// The identifying attributes of PS3.15 Table E.1-1 that radiographs carry,
/// with the action taken (the profile allows X for Z/D attributes that are
/// not Type 1/2 in the IOD; Patient Name and ID are Type 2 and get the study
/// number instead).
pub const PROFILE: &[(Tag, &str, Action)] = &[
    (Tag(0x0010, 0x0010), "PatientName", Action::StudyNumber),
    (Tag(0x0010, 0x0020), "PatientID", Action::StudyNumber),
    (Tag(0x0010, 0x0021), "IssuerOfPatientID", Action::Remove),
    (
        Tag(0x0010, 0x0030),
        "PatientBirthDate",
        Action::Empty(VR::DA),
    ),
    (Tag(0x0010, 0x0032), "PatientBirthTime", Action::Remove),
    (Tag(0x0010, 0x0040), "PatientSex", Action::Empty(VR::CS)),
    (Tag(0x0010, 0x1000), "OtherPatientIDs", Action::Remove),
    (Tag(0x0010, 0x1001), "OtherPatientNames", Action::Remove),
    (
        Tag(0x0010, 0x1002),
        "OtherPatientIDsSequence",
        Action::Remove,
    ),
    (Tag(0x0010, 0x1005), "PatientBirthName", Action::Remove),
    (Tag(0x0010, 0x1010), "PatientAge", Action::Remove),
    (Tag(0x0010, 0x1020), "PatientSize", Action::Remove),
    (Tag(0x0010, 0x1030), "PatientWeight", Action::Remove),
    (Tag(0x0010, 0x1040), "PatientAddress", Action::Remove),
    (
        Tag(0x0010, 0x1060),
        "PatientMotherBirthName",
        Action::Remove,
    ),
    (
        Tag(0x0010, 0x2154),
        "PatientTelephoneNumbers",
        Action::Remove,
    ),
    (Tag(0x0010, 0x2160), "EthnicGroup", Action::Remove),
    (Tag(0x0010, 0x2180), "Occupation", Action::Remove),
    (
        Tag(0x0010, 0x21B0),
        "AdditionalPatientHistory",
        Action::Remove,
    ),
    (Tag(0x0010, 0x4000), "PatientComments", Action::Remove),
    (
        Tag(0x0008, 0x0050),
        "AccessionNumber",
        Action::Empty(VR::SH),
    ),
    (Tag(0x0008, 0x0080), "InstitutionName", Action::Remove),
    (Tag(0x0008, 0x0081), "InstitutionAddress", Action::Remove),
    (
        Tag(0x0008, 0x0090),
        "ReferringPhysicianName",
        Action::Empty(VR::PN),
    ),
    (
        Tag(0x0008, 0x0092),
        "ReferringPhysicianAddress",
        Action::Remove,
    ),
    (
        Tag(0x0008, 0x0094),
        "ReferringPhysicianTelephoneNumbers",
        Action::Remove,
    ),
    (Tag(0x0008, 0x1010), "StationName", Action::Remove),
    (Tag(0x0008, 0x1030), "StudyDescription", Action::Remove),
    (Tag(0x0008, 0x103E), "SeriesDescription", Action::Remove),
    (
        Tag(0x0008, 0x1040),
        "InstitutionalDepartmentName",
        Action::Remove,
    ),
    (Tag(0x0008, 0x1048), "PhysiciansOfRecord", Action::Remove),
    (
        Tag(0x0008, 0x1050),
        "PerformingPhysicianName",
        Action::Remove,
    ),
    (
        Tag(0x0008, 0x1060),
        "NameOfPhysiciansReadingStudy",
        Action::Remove,
    ),
    (Tag(0x0008, 0x1070), "OperatorsName", Action::Remove),
    (
        Tag(0x0008, 0x1080),
        "AdmittingDiagnosesDescription",
        Action::Remove,
    ),
    (
        Tag(0x0008, 0x1110),
        "ReferencedStudySequence",
        Action::Remove,
    ),
    (
        Tag(0x0008, 0x1111),
        "ReferencedPerformedProcedureStepSequence",
        Action::Remove,
    ),
    (
        Tag(0x0008, 0x1120),
        "ReferencedPatientSequence",
        Action::Remove,
    ),
    (Tag(0x0008, 0x2111), "DerivationDescription", Action::Remove),
    (Tag(0x0018, 0x1000), "DeviceSerialNumber", Action::Remove),
    (Tag(0x0018, 0x1030), "ProtocolName", Action::Remove),
    (Tag(0x0020, 0x0010), "StudyID", Action::Empty(VR::SH)),
    (Tag(0x0020, 0x4000), "ImageComments", Action::Remove),
    (Tag(0x0032, 0x1032), "RequestingPhysician", Action::Remove),
    (
        Tag(0x0032, 0x1060),
        "RequestedProcedureDescription",
        Action::Remove,
    ),
    (
        Tag(0x0040, 0x0244),
        "PerformedProcedureStepStartDate",
        Action::Remove,
    ),
    (
        Tag(0x0040, 0x0253),
        "PerformedProcedureStepID",
        Action::Remove,
    ),
    (
        Tag(0x0040, 0x0254),
        "PerformedProcedureStepDescription",
        Action::Remove,
    ),
    (
        Tag(0x0040, 0x0275),
        "RequestAttributesSequence",
        Action::Remove,
    ),
    (Tag(0x0040, 0xA124), "UID", Action::Remove),
    (Tag(0x0040, 0xA730), "ContentSequence", Action::Remove),
    (Tag(0x0020, 0x000D), "StudyInstanceUID", Action::NewUid),
    (Tag(0x0020, 0x000E), "SeriesInstanceUID", Action::NewUid),
    (Tag(0x0008, 0x0018), "SOPInstanceUID", Action::NewUid),
    (Tag(0x0020, 0x0052), "FrameOfReferenceUID", Action::NewUid),
    (Tag(0x0008, 0x0014), "InstanceCreatorUID", Action::NewUid),
    (
        Tag(0x0020, 0x0200),
        "SynchronizationFrameOfReferenceUID",
        Action::NewUid,
    ),
];

/// Patient Identity Removed (0012,0062), De-identification Method
/// (0012,0063) and De-identification Method Code Sequence (0012,0064).
pub const IDENTITY_REMOVED: Tag = Tag(0x0012, 0x0062);
pub const METHOD: Tag = Tag(0x0012, 0x0063);
pub const METHOD_CODES: Tag = Tag(0x0012, 0x0064);

/// A coded concept of PS3.16 CID 7050 "De-identification Method" (coding
/// scheme DCM): code value and code meaning.
pub type MethodCode = (&'static str, &'static str);

pub const BASIC_PROFILE: MethodCode = ("113100", "Basic Application Confidentiality Profile");
pub const FULL_DATES: MethodCode = (
    "113106",
    "Retain Longitudinal Temporal Information Full Dates Option",
);
pub const MODIFIED_DATES: MethodCode = (
    "113107",
    "Retain Longitudinal Temporal Information Modified Dates Option",
);

/// The profile and options applied: the basic profile, and the dates
/// option of the study's setting.
pub fn methods(dates_shifted: bool) -> [MethodCode; 2] {
    [
        BASIC_PROFILE,
        if dates_shifted {
            MODIFIED_DATES
        } else {
            FULL_DATES
        },
    ]
}

/// Who de-identified: the last value of De-identification Method, after
/// the code meanings (each value is an LO, at most 64 characters).
pub const METHOD_BY: &str = "Osteo EDC";
