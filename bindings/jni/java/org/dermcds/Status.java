package org.dermcds;

/** The C API's dermcds_status (include/dermcds/dermcds.h), with the same numbers. */
public enum Status {
  OK(0),
  INVALID_ARGUMENT(1),
  NOT_FOUND(2),
  UNSUPPORTED_FORMAT(3),
  INVALID_IMAGE(4),
  IMAGE_TOO_LARGE(5),
  INVALID_PACKAGE(6),
  MODEL_MISMATCH(7),
  UNSUPPORTED_MODEL(8),
  RUNTIME_UNAVAILABLE(9),
  RUNTIME_FAILURE(10),
  IO_ERROR(11),
  RESOURCE_EXHAUSTED(12),
  DEADLINE_EXCEEDED(13),
  INTERNAL(14),
  OUT_OF_MEMORY(15);

  private final int code;

  Status(int code) {
    this.code = code;
  }

  /** The C status number. */
  public int code() {
    return code;
  }

  /** The status with this C number; INTERNAL for a number this binding does not know. */
  public static Status fromCode(int code) {
    for (Status status : values()) {
      if (status.code == code) return status;
    }
    return INTERNAL;
  }
}
