# Writes OUTPUT: a C++ file defining kOpenApiJson with INPUT's text.
file(READ ${INPUT} CONTENT)
string(FIND "${CONTENT}" ")okrd_openapi\"" CLASH)
if(NOT CLASH EQUAL -1)
  message(FATAL_ERROR "openapi.json contains the raw-string delimiter")
endif()
file(WRITE ${OUTPUT} "namespace okr::api {\nextern const char kOpenApiJson[];\nconst char kOpenApiJson[] = R\"okrd_openapi(${CONTENT})okrd_openapi\";\n}  // namespace okr::api\n")
