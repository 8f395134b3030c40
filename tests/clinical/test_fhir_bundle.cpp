// The FHIR Bundle's own rules, by hand-computed values: the percentage scale of
// probabilityDecimal, the tier -> qualitativeRisk mapping, the subject check. The resources'
// conformance to R4 is checked by Medplum's validator and fhirpath in tests/service.
#include <gtest/gtest.h>

#include "dermcds/clinical/fhir_bundle.hpp"
#include "dermcds/error.hpp"

namespace dermcds::clinical {
namespace {

ClassificationResult sample_result() {
  ClassificationResult r;
  r.model_name = "derm-effnet-b4";
  r.model_version = "3";
  r.runtime = "onnxruntime";
  r.runtime_version = "1.30.0";
  r.provider = "cpu";
  r.precision = "fp32";
  r.labels = {{"MEL", "Melanoma"}, {"NV", "Melanocytic nevus"}, {"BCC", "Basal cell carcinoma"}};
  r.probabilities = {0.6f, 0.25f, 0.15f};
  r.top1 = 0;
  r.triage = {"urgent_referral", "urgent_referral", 0.75, 0.45, "urgent_referral"};
  return r;
}

TEST(FhirBundle, PredictionsArePercentagesWithTheTiersRisk) {
  const ClassificationResult r = sample_result();
  const TriagePolicy policy{{{"urgent_referral", {"MEL", "BCC"}, 0.3}}, "routine"};
  FhirClassification input;
  input.result = &r;
  input.triage = &policy;
  input.subject = "Patient/123";
  input.image.sha256 = std::string(64, 'b');
  input.image.content_type = "image/jpeg";
  input.image.bytes = 1000;
  input.artifact_sha256 = std::string(64, 'c');
  input.occurrence = "2026-12-02T06:41:03.123Z";
  const auto bundle = fhir_bundle(input);
  EXPECT_EQ(bundle["type"], "collection");
  ASSERT_EQ(bundle["entry"].size(), 3u);
  const auto& ra = bundle["entry"][0]["resource"];
  EXPECT_EQ(ra["resourceType"], "RiskAssessment");
  EXPECT_EQ(ra["status"], "preliminary");
  EXPECT_EQ(ra["subject"]["reference"], "Patient/123");
  EXPECT_EQ(ra["meta"]["security"][0]["code"], "AIAST");
  EXPECT_EQ(ra["performer"]["reference"], bundle["entry"][1]["fullUrl"]);
  EXPECT_EQ(ra["basis"][0]["reference"], bundle["entry"][2]["fullUrl"]);
  ASSERT_EQ(ra["prediction"].size(), 3u);
  EXPECT_DOUBLE_EQ(ra["prediction"][0]["probabilityDecimal"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(ra["prediction"][1]["probabilityDecimal"].get<double>(), 25.0);
  // MEL and BCC drove the urgent tier: high; NV did not: low.
  EXPECT_EQ(ra["prediction"][0]["qualitativeRisk"]["coding"][0]["code"], "high");
  EXPECT_EQ(ra["prediction"][1]["qualitativeRisk"]["coding"][0]["code"], "low");
  EXPECT_EQ(ra["prediction"][2]["qualitativeRisk"]["coding"][0]["code"], "high");
  EXPECT_EQ(ra["prediction"][1]["outcome"]["coding"][1]["system"], "http://snomed.info/sct");
  EXPECT_EQ(ra["prediction"][0]["outcome"]["coding"].size(), 1u);  // no cited SNOMED CT code for MEL
  const auto& media = bundle["entry"][2]["resource"];
  EXPECT_EQ(media["identifier"][0]["value"], std::string(64, 'b'));
  EXPECT_FALSE(media["content"].contains("data"));  // never the pixels
  EXPECT_EQ(bundle["entry"][1]["resource"]["deviceName"][0]["type"], "model-name");
}

TEST(FhirBundle, TierMapping) {
  EXPECT_EQ(qualitative_risk_for_tier("urgent_referral"), "high");
  EXPECT_EQ(qualitative_risk_for_tier("dermatology_review"), "moderate");
  EXPECT_EQ(qualitative_risk_for_tier("routine"), "low");
  EXPECT_EQ(qualitative_risk_for_tier("not_assessable"), "");
}

TEST(FhirBundle, SubjectMustBeAPatientOrGroupReference) {
  EXPECT_NO_THROW(require_subject_reference("Patient/123", "subject"));
  EXPECT_NO_THROW(require_subject_reference("Group/a-b.c", "subject"));
  for (const char* bad : {"", "123", "Patient/", "Practitioner/1", "Patient/a b", "Patient/1/_history/2"}) {
    try {
      require_subject_reference(bad, "subject");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("subject"), std::string::npos);
    }
  }
}

TEST(FhirBundle, UuidsAreVersion4) {
  const std::string a = random_uuid(), b = random_uuid();
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
}

}  // namespace
}  // namespace dermcds::clinical
